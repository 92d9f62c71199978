#version 330 core
// Ray-march a baked tri-plane field: a 3D texture [z][y][x] with RGB = decoder colour in [0, 1] and A = raw density
// s over the box [-box_warp/2, box_warp/2]^3. Compositing is the torch renderer's midpoint marcher:
//   sigma_i = softplus((s_i + s_{i+1}) / 2 - 1), alpha_i = 1 - exp(-sigma_i delta), w_i = alpha_i T_i,
//   C = sum w_i (c_i + c_{i+1}) / 2 (premultiplied over black), depth = sum w_i t_i' / sum w_i, opacity = sum w_i.
// Camera: OpenCV axes (columns of cam_rot: right, down, forward), normalised intrinsics (focal, principal point).
// Output row 0 (GL's bottom row) is the image's top row, so the texture reads like a numpy image.
uniform sampler3D grid;
uniform mat3 cam_rot;
uniform vec3 cam_origin;
uniform float focal;
uniform vec2 resolution;
uniform float ray_start;
uniform float ray_end;
uniform int n_samples;
uniform float box_warp;
uniform int mode;        // 0 colour, 1 depth, 2 opacity
uniform vec3 background; // added with weight (1 - opacity); zero for the model's own (black) background
uniform vec2 depth_range;
out vec4 frag;

vec4 field(vec3 p) {
    vec3 uvw = p / box_warp + 0.5;
    if (any(lessThan(uvw, vec3(0.0))) || any(greaterThan(uvw, vec3(1.0)))) return vec4(0.0, 0.0, 0.0, -30.0);
    return texture(grid, uvw);
}

float softplus(float x) { return x > 20.0 ? x : log(1.0 + exp(x)); }

void main() {
    vec2 uv = gl_FragCoord.xy / resolution;  // u across columns, v down the rows
    vec3 d = normalize(cam_rot * vec3((uv.x - 0.5) / focal, (uv.y - 0.5) / focal, 1.0));
    float delta = (ray_end - ray_start) / float(n_samples - 1);
    float t_prev = ray_start + 0.5 * delta;
    vec4 f_prev = field(cam_origin + t_prev * d);
    float T = 1.0;
    vec3 color = vec3(0.0);
    float wsum = 0.0;
    float tsum = 0.0;
    for (int i = 1; i < n_samples; ++i) {
        float t = t_prev + delta;
        vec4 f = field(cam_origin + t * d);
        float sigma = softplus(0.5 * (f.a + f_prev.a) - 1.0);
        float alpha = 1.0 - exp(-sigma * delta);
        float w = alpha * T;
        color += w * 0.5 * (f.rgb + f_prev.rgb);
        wsum += w;
        tsum += w * 0.5 * (t + t_prev);
        T *= 1.0 - alpha + 1e-10;
        f_prev = f;
        t_prev = t;
        if (T < 1e-3) break;
    }
    if (mode == 1) {  // depth: near = bright over the object (opacity > 0.5, as viewer/images.py), else background
        float depth = wsum > 1e-6 ? tsum / wsum : ray_end;
        float g = 1.0 - clamp((depth - depth_range.x) / max(depth_range.y - depth_range.x, 1e-6), 0.0, 1.0);
        frag = vec4(wsum > 0.5 ? vec3(g) : background, 1.0);
        return;
    } else if (mode == 2) {
        color = vec3(wsum);
    }
    frag = vec4(clamp(color + (1.0 - wsum) * background, 0.0, 1.0), 1.0);
}
