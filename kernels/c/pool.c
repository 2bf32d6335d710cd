/* The 2 x 2 max pool of the CNN, stride 2 (POOL, nnladder.h), NCHW: the planes of B * Q
 * images one after another, an odd last row or column dropped as the contract says. */
#include <string.h>

#include "nnladder.h"

/* The offset in x_YZ of window (u, w)'s max, the first in row-major order on a tie: later
 * entries replace it only when strictly greater. */
static ptrdiff_t window_max(ptrdiff_t Z, const float* x_YZ, ptrdiff_t u, ptrdiff_t w)
{
    ptrdiff_t best = u * POOL * Z + w * POOL;
    for (ptrdiff_t j = 0; j < POOL; j++) {
        for (ptrdiff_t l = 0; l < POOL; l++) {
            const ptrdiff_t at = (u * POOL + j) * Z + w * POOL + l;
            if (x_YZ[at] > x_YZ[best]) best = at;
        }
    }
    return best;
}

void maxpool2d_fwd(ptrdiff_t images, ptrdiff_t Y, ptrdiff_t Z, const float* x, float* y)
{
    const ptrdiff_t U = Y / POOL, W = Z / POOL;
    for (ptrdiff_t i = 0; i < images; i++) {
        const float* x_YZ = x + i * Y * Z;
        for (ptrdiff_t u = 0; u < U; u++) {
            for (ptrdiff_t w = 0; w < W; w++) {
                y[(i * U + u) * W + w] = x_YZ[window_max(Z, x_YZ, u, w)];
            }
        }
    }
}

void maxpool2d_bwd(ptrdiff_t images, ptrdiff_t Y, ptrdiff_t Z, const float* x, const float* dy,
                   float* dx)
{
    const ptrdiff_t U = Y / POOL, W = Z / POOL;
    memset(dx, 0, images * Y * Z * sizeof(float));
    for (ptrdiff_t i = 0; i < images; i++) {
        const float* x_YZ = x + i * Y * Z;
        for (ptrdiff_t u = 0; u < U; u++) {
            for (ptrdiff_t w = 0; w < W; w++) {
                dx[i * Y * Z + window_max(Z, x_YZ, u, w)] = dy[(i * U + u) * W + w];
            }
        }
    }
}
