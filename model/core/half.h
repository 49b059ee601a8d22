/* IEEE half <-> float conversion on the host (round to nearest even). */
#pragma once

#include <glib.h>
#include <string.h>

static inline float
f2_half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exponent = (h >> 10) & 0x1f;
  guint32 mantissa = h & 0x3ff;
  guint32 bits;
  float f;

  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {                    /* subnormal: normalise */
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        exponent--;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000 | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  memcpy (&f, &bits, 4);
  return f;
}

static inline guint16
f2_float_to_half (float f)
{
  guint32 bits, sign, mantissa;
  gint32 exponent;

  memcpy (&bits, &f, 4);
  sign = (bits >> 16) & 0x8000;
  exponent = (gint32) ((bits >> 23) & 0xff) - 127 + 15;
  mantissa = bits & 0x7fffff;

  if (((bits >> 23) & 0xff) == 0xff)      /* inf or nan */
    return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >> 13) : 0);
  if (exponent >= 31)
    return sign | 0x7c00;
  if (exponent <= 0) {
    guint32 shift, half_bit, rest, value;
    if (exponent < -10)
      return sign;
    mantissa |= 0x800000;
    shift = (guint32) (14 - exponent);
    value = mantissa >> shift;
    half_bit = 1u << (shift - 1);
    rest = mantissa & ((1u << shift) - 1);
    if (rest > half_bit || (rest == half_bit && (value & 1)))
      value++;
    return sign | value;
  }
  {
    guint32 value = ((guint32) exponent << 10) | (mantissa >> 13);
    guint32 rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (value & 1)))
      value++;                  /* may carry into the exponent: still correct */
    return sign | value;
  }
}

/* bfloat16 is the top half of a float */
static inline float
f2_bf16_to_float (guint16 b)
{
  guint32 bits = (guint32) b << 16;
  float f;
  memcpy (&f, &bits, 4);
  return f;
}
