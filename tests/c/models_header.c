/* mfcy/_models_kernel.h on its own, for ci/c_kernel.sh's warnings check (every
 * compiler and target): the NMF entry points and the level switch. */
#include "_models_kernel.h"

int main(void) {
    float p[16] = {0}, q[16] = {0}, sums[64], r = 1;
    double sse[1];
    int64_t ptr[2] = {0, 1};
    int32_t items[1] = {0};
    int level = mfcym_set_nmf_level(1);
    mfcym_nmf_fused_fi32(p, q, ptr, items, &r, NULL, NULL, 1, 1, 0, 0, sums, sse, 16);
    return level + mfcym_nmf_level_in_use() + (sse[0] > 1 ? 1 : 0);
}
