// Shared definitions for every compute shader.
//
// Storage type of float tensors: fp32, or fp16 when built with F2_FP16
// (arithmetic always in fp32). Load with LOAD(x), store with STORE(x).
// Binding b's first element is at pc.off[b] (the descriptor offset is
// aligned down by the host; the remainder comes in as an element offset).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : enable

#ifdef F2_FP16
#define float_t float16_t
#define vec4_t f16vec4
#define vec2_t f16vec2
#else
#define float_t float
#define vec4_t vec4
#define vec2_t vec2
#endif
#define LOAD(x) float(x)
#define LOAD4(x) vec4(x)
#define STORE(x) float_t(x)
#define STORE4(x) vec4_t(x)

#define F2_PUSH_OFFSETS uint off[8];

const float F2_SQRT1_2 = 0.70710678118654752440;

// erf with |error| < 1.2e-7 (Numerical Recipes erfc), for exact GELU
float f2_erf(float x)
{
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.5 * z);
    float r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 +
              t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 +
              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0.0 ? 1.0 - r : r - 1.0;
}

float f2_gelu(float x)
{
    return 0.5 * x * (1.0 + f2_erf(x * F2_SQRT1_2));
}

// Flat invocation index over a 2-D grid of workgroups (see f2_vk_grid_1d)
uint f2_flat_index()
{
    return gl_GlobalInvocationID.x +
        gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
