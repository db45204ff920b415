/* bench: sort 2,000,000 integers with qsort and a comparator defined in another file. */
#include <stdio.h>
#include <stdlib.h>

int compare_ints(const void *a, const void *b);

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    int *v = malloc(n * sizeof *v);
    unsigned x = 2463534242u;
    long checksum = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            v[i] = (int)(x % 1000000007u);
        }
        qsort(v, n, sizeof *v, compare_ints);
        checksum += v[0] + v[n / 2] + v[n - 1];
    }
    printf("%ld\n", checksum);
    free(v);
    return 0;
}
