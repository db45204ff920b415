/* libFuzzer target for alley's native launcher (allvm/launcher.c): what it parses from files
 * other users may have written -- an allexe's zip directory, a launch record, a sealed cache
 * entry -- must be read without any memory error, and what it accepts must be well formed.
 *
 * Built by fuzz/build_launcher_fuzzer.py with the launcher's own -D definitions (plus
 * ALLVM_FUZZ, which leaves out its main), run by `make fuzz` and tests/test_fuzz_launcher.py.
 *
 * Every input goes to each parser, each on its own heap copy of exactly the input's size (so
 * ASan sees any read past the end). Then one more view of it: after a first byte 'R' or 'K',
 * the rest is also tried as a launch record and as a key (the seeds hand over a record and a
 * key so); otherwise the input's printable prefix is tried as a record, so the record parser
 * sees text-like inputs whatever else the corpus holds.
 *
 * Invariants (abort on violation):
 *   static_binary_key() == 1  ->  out is a key (is_key(out, strlen(out)))
 *   parse_record() == 1       ->  format_record() of it parses back to the same record, and
 *                                 the key it holds is a key
 *   unseal() >= 0             ->  the payload size fits the entry, before the trailer
 */
#include "../allvm/launcher.c"

static uint8_t *copy(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        abort();
    if (size)
        memcpy(p, data, size);
    return p;
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_launcher: invariant violated: %s\n", what);
        abort();
    }
}

static int same_record(const launch_record *a, const launch_record *b) {
    return same(a->allexe, b->allexe) && same(a->binary, b->binary) && !strcmp(a->key, b->key);
}

static void fuzz_key(const uint8_t *data, size_t size) {
    uint8_t *p = copy(data, size);
    char out[KEY_MAX + 16];
    memset(out, 0x55, sizeof out); /* not a NUL: an unterminated key shows in strlen */
    if (static_binary_key((bytes){p, size}, out)) {
        check(memchr(out, 0, KEY_MAX) != NULL, "static_binary_key: key not terminated");
        check(is_key(out, strlen(out)), "static_binary_key: not a key");
    }
    free(p);
}

static void fuzz_record(const uint8_t *data, size_t size) {
    char *p = (char *)copy(data, size);
    launch_record r, again;
    memset(&r, 0, sizeof r);
    if (parse_record(p, size, &r)) {
        char text[RECORD_MAX];
        check(is_key(r.key, strlen(r.key)), "parse_record: not a key");
        int n = format_record(&r, text, sizeof text);
        check(n > 0 && n < (int)sizeof text, "format_record: record too long");
        char *exact = (char *)copy((const uint8_t *)text, n);
        memset(&again, 0, sizeof again);
        check(parse_record(exact, n, &again), "parse_record: its own format refused");
        check(same_record(&r, &again), "parse_record: format and parse differ");
        free(exact);
    }
    free(p);
}

static void fuzz_unseal(const uint8_t *data, size_t size) {
    uint8_t *p = copy(data, size);
    long long payload = unseal((bytes){p, size});
    check(payload >= -1, "unseal: negative size");
    check(payload < 0 || (size_t)payload + SEAL_TRAILER <= size, "unseal: payload too large");
    free(p);
}

static void fuzz_is_key(const uint8_t *data, size_t size) {
    char *p = (char *)copy(data, size);
    if (is_key(p, size))
        check(size == KEY_CHARS && p[8] == '-', "is_key: not a key's shape");
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_key(data, size);
    fuzz_record(data, size);
    fuzz_unseal(data, size);
    fuzz_is_key(data, size);
    if (size && (data[0] == 'R' || data[0] == 'K')) {
        fuzz_record(data + 1, size - 1);
        fuzz_is_key(data + 1, size - 1);
    } else {
        size_t n = 0;
        while (n < size && n < RECORD_MAX && data[n] >= 0x20 && data[n] <= 0x7E)
            n++;
        if (n != size)
            fuzz_record(data, n);
    }
    return 0;
}
