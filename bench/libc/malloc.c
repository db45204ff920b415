/* Figure 12's allocation workload: `malloc KIND ROUNDS` replaces a random one of LIVE blocks
   ROUNDS times (free, then malloc a new size), writing into each new block as a program
   would, and prints a checksum.
   - small:  8-256 bytes, 1024 blocks live (strings, list and tree nodes);
   - medium: 1-64 KiB, 64 blocks live (buffers: sqlite3's pages, a decompressor's windows);
   - threads: `small` in 2 threads at once (each thread its own blocks). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct churn {
    size_t low, high, live;
    long rounds;
    unsigned seed;
    size_t sum;
};

static unsigned next(unsigned *seed) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return *seed;
}

static void *run(void *arg) {
    struct churn *c = arg;
    unsigned char **blocks = calloc(c->live, sizeof *blocks);
    size_t *sizes = calloc(c->live, sizeof *sizes);
    if (!blocks || !sizes)
        abort();
    for (long r = 0; r < c->rounds; r++) {
        size_t slot = next(&c->seed) % c->live;
        size_t size = c->low + next(&c->seed) % (c->high - c->low + 1);
        if (blocks[slot])
            c->sum += blocks[slot][sizes[slot] - 1];
        free(blocks[slot]);
        blocks[slot] = malloc(size);
        if (!blocks[slot])
            abort();
        /* A program fills what it allocates: a header, a line of data, the last byte. */
        memset(blocks[slot], (int)r, size < 64 ? size : 64);
        blocks[slot][size - 1] = (unsigned char)size;
        sizes[slot] = size;
    }
    for (size_t i = 0; i < c->live; i++)
        free(blocks[i]);
    free(blocks);
    free(sizes);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: malloc small|medium|threads ROUNDS\n");
        return 2;
    }
    long rounds = atol(argv[2]);
    struct churn small = {8, 256, 1024, rounds, 2463534242u, 0};
    struct churn medium = {1024, 64 * 1024, 64, rounds, 88675123u, 0};
    size_t sum = 0;
    if (!strcmp(argv[1], "small") || !strcmp(argv[1], "medium")) {
        struct churn *c = argv[1][0] == 's' ? &small : &medium;
        run(c);
        sum = c->sum;
    } else if (!strcmp(argv[1], "threads")) {
        struct churn other = small;
        other.seed = 123456789u;
        pthread_t thread;
        if (pthread_create(&thread, NULL, run, &other))
            abort();
        run(&small);
        pthread_join(thread, NULL);
        sum = small.sum + other.sum;
    } else {
        fprintf(stderr, "malloc: unknown kind '%s'\n", argv[1]);
        return 2;
    }
    printf("%s %zu\n", argv[1], sum);
    return 0;
}
