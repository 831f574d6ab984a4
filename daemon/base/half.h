/*
 * half: IEEE binary16 <-> binary32 in software.  Widening is exact;
 * narrowing rounds to nearest even, overflows to Inf and keeps NaN a NaN.
 */
#ifndef EGR_HALF_H
#define EGR_HALF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

float egr_half_to_float(uint16_t h);
uint16_t egr_half_from_float(float f);

#ifdef __cplusplus
}
#endif

#endif
