/* The platform's allocator keeps musl's semantics (allvm.platform.malloc): contents across
   realloc, alignment, malloc(0), errno on failure, zeroed calloc after reuse, frees of what
   libc allocated, many threads allocating and freeing each other's blocks. Sizes come from
   argv, so the compiler cannot fold the calls. Every line is what musl prints (glibc's too,
   but for its wording of ENOMEM). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t zero;

static int pattern_kept(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed))
            return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

static void resizing(void) {
    /* Grow and shrink through every size class and into mmap'd sizes: contents are kept. */
    static const size_t sizes[] = {1, 24, 100, 1000, 5000, 40000, 70000, 300000, 5000000, 64,
                                   3, 200000, 8};
    size_t n = 16 + zero;
    unsigned char *p = malloc(n);
    fill(p, n, 7);
    int kept = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t next = sizes[i] + zero;
        p = realloc(p, next);
        kept &= p != NULL && pattern_kept(p, n < next ? n : next, 7);
        fill(p, next, 7);
        n = next;
    }
    free(p);
    printf("realloc keeps contents: %d\n", kept);
}

static void aligned(void) {
    int ok = 1;
    for (size_t align = sizeof(void *); align <= 65536; align *= 2) {
        void *p = NULL;
        int error = posix_memalign(&p, align + zero, 3 * align + 1);
        void *q = aligned_alloc(align + zero, 5 * align);
        void *r = memalign(align + zero, 100);
        ok &= !error && p && q && r && (uintptr_t)p % align == 0 && (uintptr_t)q % align == 0
              && (uintptr_t)r % align == 0;
        memset(p, 1, 3 * align + 1);
        memset(q, 2, 5 * align);
        free(p);
        free(q);
        free(r);
    }
    void *p = NULL;
    errno = 0;
    int odd = posix_memalign(&p, 24 + zero, 10), small = posix_memalign(&p, 2 + zero, 10);
    printf("aligned at every power of two: %d; posix_memalign(24) %s, (2) %s, errno %d\n", ok,
           strerror(odd), strerror(small), errno);
    void *page = valloc(100 + zero);
    printf("valloc page-aligned: %d\n", page && (uintptr_t)page % 4096 == 0);
    free(page);
}

static void edges(void) {
    void *a = malloc(zero), *b = malloc(zero);
    printf("malloc(0): %s, distinct %d\n", a && b ? "non-NULL" : "NULL", a != b);
    free(a);
    free(b);
    free(NULL);
    /* The volatile keeps the calls (the compiler may assume an unused allocation succeeds);
       %m has libc read errno (the compiler assumes an allocation leaves errno alone). */
    static void *volatile kept;
    errno = 0;
    kept = calloc(SIZE_MAX / 8 + zero, 16);
    printf("calloc overflow: %s, %m\n", kept ? "non-NULL" : "NULL");
    errno = 0;
    kept = malloc(SIZE_MAX - 4096 + zero);
    printf("malloc(SIZE_MAX - 4096): %s, %m\n", kept ? "non-NULL" : "NULL");
    /* calloc's memory is zero also where a freed, dirty block is reused. */
    int zeroed = 1;
    for (size_t n = 8; n <= 1 << 20; n *= 4) {
        unsigned char *dirty = malloc(n + zero);
        memset(dirty, 0xAB, n);
        free(dirty);
        unsigned char *clean = calloc(n + zero, 1);
        for (size_t i = 0; i < n; i++)
            zeroed &= clean[i] == 0;
        free(clean);
    }
    printf("calloc zeroed after reuse: %d\n", zeroed);
    size_t usable = malloc_usable_size(a = malloc(1000 + zero));
    printf("malloc_usable_size covers the request: %d\n", usable >= 1000);
    free(a);
}

static void from_libc(void) {
    /* Blocks libc allocates (strdup, getline, open_memstream) are freed by the program. */
    char *s = strdup("platform");
    char *t = strndup("allocator", 5 + zero);
    FILE *f = fmemopen("one line\nand another\n", 21, "r");
    char *line = NULL;
    size_t capacity = 0;
    ssize_t got = getline(&line, &capacity, f);
    fclose(f);
    char *buffer;
    size_t size;
    FILE *m = open_memstream(&buffer, &size);
    fprintf(m, "%s %s %zd", s, t, got);
    fclose(m);
    printf("from libc: %s (%zu bytes)\n", buffer, size);
    free(s);
    free(t);
    free(line);
    free(buffer);
}

#define THREADS 8
#define BLOCKS 2000
static void *handed[THREADS][BLOCKS];

static void *allocating(void *arg) {
    size_t id = (size_t)arg;
    unsigned seed = (unsigned)id + 1;
    for (int round = 0; round < 20; round++) {
        void *mine[64];
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245 + 12345;
            size_t n = 1 + (seed >> 16) % 9000;
            mine[i] = malloc(n);
            fill(mine[i], n < 32 ? n : 32, (unsigned)id);
        }
        for (int i = 0; i < 64; i++)
            free(mine[i]);
    }
    for (int i = 0; i < BLOCKS; i++) {  /* freed by the next thread */
        handed[id][i] = malloc(16 + (size_t)i % 200);
        fill(handed[id][i], 16, (unsigned)id);
    }
    return NULL;
}

static void threads(void) {
    pthread_t t[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, allocating, (void *)i);
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int kept = 1;
    for (size_t i = 0; i < THREADS; i++)
        for (int j = 0; j < BLOCKS; j++) {
            kept &= pattern_kept(handed[i][j], 16, (unsigned)i);
            free(handed[i][j]);
        }
    printf("%d threads allocated, freed across threads: %d\n", THREADS, kept);
}

int main(int argc, char **argv) {
    zero = (size_t)atoi(argc > 1 ? argv[1] : "0");
    resizing();
    aligned();
    edges();
    from_libc();
    threads();
    return 0;
}
