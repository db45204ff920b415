/* Figure 12's string workload: one libc string function called on short inputs (0-63 bytes,
   every length, at shifting alignments), as programs call them: parsers, tokenizers, hash
   keys. `strings FUNCTION ROUNDS` prints a checksum, so every call's result is used.

   The memory clobber after each round makes the compiler call the functions again (they read
   memory it can no longer assume unchanged), as real code does on new data. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LENGTHS 64
#define SLOT 80

static char text[LENGTHS * SLOT + 64], copy[LENGTHS * SLOT + 64], out[SLOT + 64];

/* Input i: i bytes of lower-case letters ending in a NUL, at offset i % 16 in its slot. */
static char *input(char *base, int i) { return base + i * SLOT + i % 16; }

static void fill(void) {
    unsigned seed = 1;
    for (int i = 0; i < LENGTHS; i++) {
        char *s = input(text, i);
        for (int j = 0; j < i; j++) {
            seed = seed * 1103515245 + 12345;
            s[j] = (char)('a' + (seed >> 16) % 26);
        }
        s[i] = 0;
        memcpy(input(copy, i), s, (size_t)i + 1);
    }
}

/* ROUNDS passes over every input, calling EXPR (of s, t, i, n) on each: one loop per
   function, so the loop around the call is the same for every libc. */
#define LOOP(EXPR)                                                                 \
    for (long r = 0; r < rounds; r++) {                                            \
        for (int i = 0; i < LENGTHS; i++) {                                        \
            char *s = input(text, i), *t = input(copy, i);                         \
            size_t n = (size_t)i;                                                  \
            (void)t;                                                               \
            sum += (size_t)(EXPR);                                                 \
        }                                                                          \
        __asm__ volatile("" ::: "memory");                                         \
    }

static int run(const char *name, long rounds, size_t *result) {
    size_t sum = 0;
    if (!strcmp(name, "strlen")) LOOP(strlen(s))
    else if (!strcmp(name, "strnlen")) LOOP(strnlen(s, 48))
    else if (!strcmp(name, "memchr")) LOOP((char *)memchr(s, 0, n + 1) - s)
    else if (!strcmp(name, "memrchr")) LOOP(memrchr(s, 'Z', n) != NULL)
    else if (!strcmp(name, "strchr")) LOOP(strchr(s, 'Z') != NULL)
    else if (!strcmp(name, "strcmp")) LOOP(strcmp(s, t))
    else if (!strcmp(name, "memcmp")) LOOP(memcmp(s, t, n))
    else if (!strcmp(name, "memset")) LOOP((memset(out + i % 16, i, n), out[i / 2 + 1]))
    else if (!strcmp(name, "memcpy")) LOOP((memcpy(out + i % 8, s, n), out[i / 2]))
    else return 0;
    *result = sum;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: strings strlen|strnlen|memchr|memrchr|strchr|strcmp|memcmp|"
                        "memset|memcpy ROUNDS\n");
        return 2;
    }
    fill();
    size_t sum;
    if (!run(argv[1], atol(argv[2]), &sum)) {
        fprintf(stderr, "strings: unknown function '%s'\n", argv[1]);
        return 2;
    }
    printf("%s %zu\n", argv[1], sum);
    return 0;
}
