/* hash.h - the 64-bit finalizer shared by the project's hash tables (flow
 * table, passive DNS). MurmurHash3's fmix64 constants: every input bit
 * affects every output bit, so table indexes can be taken from low bits. */
#ifndef EGRESSD_HASH_H
#define EGRESSD_HASH_H

#include <stdint.h>

static inline uint64_t hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#endif
