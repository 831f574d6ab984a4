/*
 * half: IEEE binary16 <-> binary32, the one implementation every module uses
 * (.npy float16 latents, float16 safetensors weights, tests).
 */
#include <string.h>

#include "daemon/base/half.h"

float egr_half_to_float(uint16_t h)
{
	uint32_t s = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f;
	uint32_t m = h & 0x3ff;
	uint32_t u;
	float f;

	if (e == 0x1f) {
		u = s | 0x7f800000 | m << 13;	/* Inf, or NaN with its payload */
	} else if (e) {
		u = s | (e + 112) << 23 | m << 13;
	} else if (!m) {
		u = s;
	} else {
		/* subnormal m * 2^-24: normalise, the exponent drops with each shift */
		e = 113;
		while (!(m & 0x400)) {
			m <<= 1;
			e--;
		}
		u = s | e << 23 | (m & 0x3ff) << 13;
	}
	memcpy(&f, &u, sizeof(f));
	return f;
}

uint16_t egr_half_from_float(float f)
{
	uint32_t u, a, m, h, rest, halfway;
	uint16_t s;
	unsigned shift;

	memcpy(&u, &f, sizeof(u));
	s = (uint16_t)((u >> 16) & 0x8000);
	a = u & 0x7fffffff;
	if (a >= 0x7f800000) {
		if (a == 0x7f800000)
			return s | 0x7c00;
		/* NaN: keep the top payload bits; never let it collapse into Inf */
		m = (a >> 13) & 0x3ff;
		return s | 0x7c00 | (uint16_t)(m ? m : 0x200);
	}
	if (a >= 0x477ff000)	/* >= 65520, halfway past 65504: rounds to Inf */
		return s | 0x7c00;
	if (a >= 0x38800000) {	/* normal half: drop 13 mantissa bits, to nearest even */
		h = ((a >> 23) - 112) << 10 | (a & 0x7fffff) >> 13;
		rest = a & 0x1fff;
		if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
			h++;	/* a carry into the exponent is the right answer */
		return s | (uint16_t)h;
	}
	if (a <= 0x33000000)	/* <= 2^-25, half of the smallest subnormal: 0 (even) */
		return s;
	/* subnormal half: value * 2^24 = m * 2^(e - 126) with the implicit bit */
	m = (a & 0x7fffff) | 0x800000;
	shift = 126 - (a >> 23);	/* 14..24 */
	h = m >> shift;
	rest = m & ((1u << shift) - 1);
	halfway = 1u << (shift - 1);
	if (rest > halfway || (rest == halfway && (h & 1)))
		h++;
	return s | (uint16_t)h;
}
