/* alley's native launcher: the cache-hit path without a Python interpreter.
 *
 * Installed as `alley` (allvm/launcher.py builds it with the bundled zig, static musl). It reads
 * the allexe's zip directory, computes the static binary's cache key, checks the cache entry and
 * execs the cached binary with argv, envp and signal dispositions exactly as the caller left
 * them. Everything else -- a miss, any option, a deny policy, anything it does not understand,
 * any error -- execs the Python alley with the same arguments, so the behaviour is the same
 * whichever side answers. The launcher never reports an error about an allexe itself.
 *
 * The key, the entry layout and the launch records are specified in allvm/cache.py (and the
 * zip reading in allvm/allexe.py); their constants reach this file as -D definitions made from
 * the Python ones, and tests/test_launcher.py holds both implementations to the same answers.
 *
 * How it is started (argv as the kernel hands it over):
 *   alley ALLEXE ARGS...             the program's argv[0] is ALLEXE, as given
 *   NAME ALLEXE ARGS...              `exec -a NAME alley ...`: argv[0] is NAME
 *   alley ALLEXE ARGS... via `#!`    the kernel passes the shebang's alley path, then the file
 *   alley-binfmt FILE ARGV0 ARGS...  binfmt_misc with its preserve-argv0 flag (allvm-binfmt)
 *   NAME ARGS...                     a copy of the launcher, or a hard link to it, whose file is
 *                                    not named alley: it runs the allexe beside it, FILE.allexe,
 *                                    under the caller's argv[0] (binfmt_misc's effect, for one
 *                                    directory and without root)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ALLVM_PYTHON
#error "ALLVM_PYTHON (and the format constants) come from allvm/launcher.py"
#endif

extern char **environ;

/* What allvm/launcher.py looks for in an installed alley: which build this is. */
__attribute__((used)) static const char build_mark[] = ALLVM_BUILD_MARK;

/* ---------------------------------------------------------------- BLAKE2b (RFC 7693) */

typedef struct {
    uint8_t b[128];
    uint64_t h[8], t[2];
    size_t c, outlen;
} blake2b_ctx;

static const uint64_t blake2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};

static const uint8_t sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

#define ROTR64(x, y) (((x) >> (y)) ^ ((x) << (64 - (y))))
#define G(a, b, c, d, x, y)                                                                    \
    do {                                                                                       \
        v[a] = v[a] + v[b] + x;                                                                \
        v[d] = ROTR64(v[d] ^ v[a], 32);                                                        \
        v[c] = v[c] + v[d];                                                                    \
        v[b] = ROTR64(v[b] ^ v[c], 24);                                                        \
        v[a] = v[a] + v[b] + y;                                                                \
        v[d] = ROTR64(v[d] ^ v[a], 16);                                                        \
        v[c] = v[c] + v[d];                                                                    \
        v[b] = ROTR64(v[b] ^ v[c], 63);                                                        \
    } while (0)

static uint64_t load64(const uint8_t *p) {
    uint64_t x;
    memcpy(&x, p, 8); /* x86-64 is little-endian, as BLAKE2b's words are */
    return x;
}

static void blake2b_compress(blake2b_ctx *ctx, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = ctx->h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= ctx->t[0];
    v[13] ^= ctx->t[1];
    if (last)
        v[14] = ~v[14];
    for (int i = 0; i < 16; i++)
        m[i] = load64(&ctx->b[8 * i]);
    for (int i = 0; i < 12; i++) {
        G(0, 4, 8, 12, m[sigma[i][0]], m[sigma[i][1]]);
        G(1, 5, 9, 13, m[sigma[i][2]], m[sigma[i][3]]);
        G(2, 6, 10, 14, m[sigma[i][4]], m[sigma[i][5]]);
        G(3, 7, 11, 15, m[sigma[i][6]], m[sigma[i][7]]);
        G(0, 5, 10, 15, m[sigma[i][8]], m[sigma[i][9]]);
        G(1, 6, 11, 12, m[sigma[i][10]], m[sigma[i][11]]);
        G(2, 7, 8, 13, m[sigma[i][12]], m[sigma[i][13]]);
        G(3, 4, 9, 14, m[sigma[i][14]], m[sigma[i][15]]);
    }
    for (int i = 0; i < 8; i++)
        ctx->h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_init(blake2b_ctx *ctx, size_t outlen) {
    for (int i = 0; i < 8; i++)
        ctx->h[i] = blake2b_iv[i];
    ctx->h[0] ^= 0x01010000 ^ outlen; /* no key, fanout 1, depth 1 */
    ctx->t[0] = ctx->t[1] = 0;
    ctx->c = 0;
    ctx->outlen = outlen;
}

static void blake2b_update(blake2b_ctx *ctx, const void *in, size_t inlen) {
    const uint8_t *p = in;
    while (inlen > 0) {
        if (ctx->c == 128) {
            ctx->t[0] += ctx->c;
            if (ctx->t[0] < ctx->c)
                ctx->t[1]++;
            blake2b_compress(ctx, 0);
            ctx->c = 0;
        }
        size_t n = 128 - ctx->c < inlen ? 128 - ctx->c : inlen;
        memcpy(ctx->b + ctx->c, p, n);
        ctx->c += n;
        p += n;
        inlen -= n;
    }
}

static void blake2b_final(blake2b_ctx *ctx, uint8_t *out) {
    ctx->t[0] += ctx->c;
    if (ctx->t[0] < ctx->c)
        ctx->t[1]++;
    memset(ctx->b + ctx->c, 0, 128 - ctx->c);
    blake2b_compress(ctx, 1);
    for (size_t i = 0; i < ctx->outlen; i++)
        out[i] = (ctx->h[i >> 3] >> (8 * (i & 7))) & 0xFF;
}

static void hex(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* cache.py's _digest(*parts): BLAKE2b over each part followed by a NUL, in hex. */
static void digest_part(blake2b_ctx *ctx, const char *part, size_t n) {
    blake2b_update(ctx, part, n);
    blake2b_update(ctx, "", 1);
}

/* ---------------------------------------------------------------- the allexe's zip directory */

typedef struct {
    const uint8_t *data;
    size_t size;
} bytes;

static uint16_t u16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t u32(const uint8_t *p) { return u16(p) | (uint32_t)u16(p + 2) << 16; }

static uint32_t crc32(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFF;
    while (n--)
        c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

static int printable_ascii(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7E)
            return 0;
    return 1;
}

static int is_bitcode(bytes f) {
    return f.size >= 4 && (!memcmp(f.data, ALLVM_BITCODE_MAGIC, 4) ||
                           !memcmp(f.data, ALLVM_BITCODE_WRAPPER_MAGIC, 4));
}

/* A module's stored-bytes digest (cache.py: the compression method, 2 bytes LE, then the
 * stored bytes), folded into the key with the module's name. */
static void key_module(blake2b_ctx *key, const char *name, size_t name_len, uint16_t method,
                       const uint8_t *stored, size_t stored_len) {
    blake2b_ctx ctx;
    uint8_t digest[ALLVM_KEY_DIGEST_SIZE];
    char digest_hex[2 * ALLVM_KEY_DIGEST_SIZE + 1];
    uint8_t m[2] = {method & 0xFF, method >> 8};
    blake2b_init(&ctx, ALLVM_KEY_DIGEST_SIZE);
    blake2b_update(&ctx, m, 2);
    blake2b_update(&ctx, stored, stored_len);
    blake2b_final(&ctx, digest);
    hex(digest, sizeof digest, digest_hex);
    digest_part(key, name, name_len);
    digest_part(key, digest_hex, 2 * ALLVM_KEY_DIGEST_SIZE);
}

/* `<CRC of main.bc>-<digest>` */
#define KEY_CHARS 49
_Static_assert(KEY_CHARS == 8 + 1 + 2 * ALLVM_KEY_DIGEST_SIZE, "key length");
#define KEY_MAX (KEY_CHARS + 1)

static void finish_key(blake2b_ctx *key, uint32_t main_crc, char *out) {
    uint8_t digest[ALLVM_KEY_DIGEST_SIZE];
    blake2b_final(key, digest);
    snprintf(out, 10, "%08X-", main_crc);
    hex(digest, sizeof digest, out + 9);
}

/* A module's name in the zip directory. Two modules of one name are refused (allexe.py):
 * found by sorting, as comparing every pair made one start of 4096 modules take 30 s. */
typedef struct {
    const uint8_t *p;
    size_t n;
} name_ref;

static int compare_names(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int has_duplicate(name_ref *names, size_t count) {
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 1; i < count; i++)
        if (!compare_names(&names[i - 1], &names[i]))
            return 1;
    return 0;
}

/* static_binary_key() of allexe.py's reading of FILE, or 0 where this launcher does not know
 * the answer for sure (anything the Python side would refuse, or read differently). */
static int static_binary_key(bytes f, char *out) {
    blake2b_ctx key;
    blake2b_init(&key, ALLVM_KEY_DIGEST_SIZE);
    digest_part(&key, ALLVM_CODEGEN_ID, strlen(ALLVM_CODEGEN_ID));
    if (is_bitcode(f)) { /* a bare bitcode file is the allexe holding it, stored, as main.bc */
        key_module(&key, ALLVM_MAIN_MODULE, strlen(ALLVM_MAIN_MODULE), 0, f.data, f.size);
        finish_key(&key, crc32(f.data, f.size), out);
        return 1;
    }
    const size_t eocd_size = 22, central_size = 46, local_size = 30;
    size_t window = f.size > 65536 + eocd_size ? f.size - 65536 - eocd_size : 0;
    size_t eocd = SIZE_MAX;
    for (size_t i = f.size >= 4 ? f.size - 4 + 1 : 0; i-- > window;)
        if (!memcmp(f.data + i, "PK\5\6", 4)) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX || f.size - eocd < eocd_size)
        return 0;
    size_t count = u16(f.data + eocd + 10), cd_size = u32(f.data + eocd + 12),
           cd_offset = u32(f.data + eocd + 16);
    if (eocd < cd_size + cd_offset || count == 0 || count > ALLVM_MAX_MODULES)
        return 0;
    size_t base = eocd - cd_size - cd_offset, pos = cd_offset + base;
    name_ref *names = malloc(count * sizeof *names);
    if (!names)
        return 0;
    uint32_t main_crc = 0;
    int ok = 1;
    for (size_t i = 0; ok && i < count; i++) {
        const uint8_t *h = f.data + pos;
        if (pos + central_size > eocd || u32(h) != 0x02014B50) {
            ok = 0;
            break;
        }
        uint16_t flags = u16(h + 8), method = u16(h + 10);
        uint32_t crc = u32(h + 16), csize = u32(h + 20), size = u32(h + 24);
        size_t nlen = u16(h + 28), elen = u16(h + 30), clen = u16(h + 32);
        size_t offset = u32(h + 42) + base, name = pos + central_size;
        ok = name + nlen <= f.size && printable_ascii(f.data + name, nlen) &&
             !(flags & 1) && (method == 0 || method == 8) && size <= ALLVM_DEFAULT_SIZE_LIMIT;
        if (i == 0)
            ok = ok && nlen == strlen(ALLVM_MAIN_MODULE) &&
                 !memcmp(f.data + name, ALLVM_MAIN_MODULE, nlen);
        names[i] = (name_ref){ok ? f.data + name : NULL, nlen};
        /* the stored bytes, behind the entry's local header */
        const uint8_t *l = f.data + offset;
        ok = ok && offset + local_size <= f.size && u32(l) == 0x04034B50;
        size_t start = ok ? offset + local_size + u16(l + 26) + u16(l + 28) : 0;
        ok = ok && start + csize <= f.size;
        if (ok)
            key_module(&key, (const char *)f.data + name, nlen, method, f.data + start, csize);
        if (i == 0)
            main_crc = crc;
        pos = name + nlen + elen + clen;
    }
    ok = ok && !has_duplicate(names, count);
    free(names);
    if (ok)
        finish_key(&key, main_crc, out);
    return ok;
}

/* ---------------------------------------------------------------- the cache */

/* A cache this process may use (cache.py, "Trust"): the root and the directories in it held
 * open, so nothing checked can be swapped after its check; -1 where missing or not safe. */
typedef struct {
    char path[PATH_MAX];
    uid_t owner;
    int root, binaries, records;
    const char *problem; /* where it exists but is not safe: why */
} cache_dir;

/* $ALLVM_CACHE_DIR, else $XDG_CACHE_HOME/allvm, else ~/.cache/allvm (HOME, else passwd) */
static int user_cache_path(char *out) {
    const char *dir = getenv("ALLVM_CACHE_DIR"), *base = getenv("XDG_CACHE_HOME");
    char cwd[PATH_MAX] = "";
    int n;
    if (dir && *dir) {
        if (dir[0] != '/' && !getcwd(cwd, sizeof cwd))
            return 0;
        n = snprintf(out, PATH_MAX, "%s%s%s", cwd, *cwd ? "/" : "", dir);
    } else if (base && *base) {
        n = snprintf(out, PATH_MAX, "%s/allvm", base);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            if (!pw)
                return 0;
            home = pw->pw_dir;
        }
        n = snprintf(out, PATH_MAX, "%s/.cache/allvm", home);
    }
    return n > 0 && n < PATH_MAX;
}

/* A directory on the way to a root: root's or the owner's, writable by others only when it is
 * sticky (there, only a file's owner may rename it). */
static int ancestor_ok(const struct stat *st, uid_t owner) {
    return (st->st_uid == 0 || st->st_uid == owner) &&
           (!(st->st_mode & 022) || (st->st_mode & S_ISVTX));
}

static int directory_ok(const struct stat *st, uid_t owner) {
    return S_ISDIR(st->st_mode) && st->st_uid == owner && !(st->st_mode & 022);
}

/* open(2) with O_CLOEXEC costs musl a second system call; openat(2) does it in one. */
#define OPEN(path, flags) openat(AT_FDCWD, path, (flags) | O_CLOEXEC)

/* The root's descriptor, walked to from "/" one directory at a time, each held open while the
 * next is checked, links followed as the kernel would, each checked where it lies (cache.py's
 * _safe_path); -1 if missing or not safe (c->problem says why). */
static int open_root(cache_dir *c) {
    char rest[2 * PATH_MAX], part[NAME_MAX + 1], target[PATH_MAX];
    int links = 0, next = -1, fd = OPEN("/", O_PATH | O_DIRECTORY);
    struct stat st;
    snprintf(rest, sizeof rest, "%s", c->path);
    char *p = rest;
    if (fd < 0 || fstat(fd, &st))
        return -1;
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (!n)
            return fd;
        next = -1;
        if (n > NAME_MAX || !ancestor_ok(&st, c->owner)) {
            c->problem = "a directory on its way is not safe";
            break;
        }
        memcpy(part, p, n);
        part[n] = 0;
        next = openat(fd, part, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 || fstat(next, &st) || !(S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))) {
            c->problem = next < 0 && errno == ENOENT ? NULL : "a part of its path is not safe";
            break;
        }
        p += n;
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            fd = next;
            continue;
        }
        /* a link: the rest of the path goes behind its target */
        ssize_t len = (st.st_uid == 0 || st.st_uid == c->owner) && ++links <= 40
                          ? readlinkat(next, "", target, sizeof target)
                          : -1;
        size_t left = strlen(p) + 1;
        close(next);
        next = -1;
        if (len <= 0 || len >= (ssize_t)sizeof target || len + left > sizeof rest ||
            fstat(fd, &st)) {
            c->problem = "a link on its way is not safe";
            break;
        }
        memmove(rest + len, p, left);
        memcpy(rest, target, len);
        p = rest;
        if (target[0] == '/') {
            close(fd);
            if ((fd = OPEN("/", O_PATH | O_DIRECTORY)) < 0 || fstat(fd, &st))
                return -1;
        }
    }
    if (next >= 0)
        close(next);
    close(fd);
    return -1;
}

/* A directory in the root (none: -1; *unsafe set where it exists but is not the owner's). */
static int open_subdir(int root, const char *name, uid_t owner, int *unsafe) {
    struct stat st;
    int fd = openat(root, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *unsafe |= errno != ENOENT;
        return -1;
    }
    if (fstat(fd, &st) || !directory_ok(&st, owner)) {
        *unsafe = 1;
        close(fd);
        return -1;
    }
    return fd;
}

static const char *const cache_directories[] = ALLVM_CACHE_DIRECTORIES;
#define CACHE_DIRECTORIES (sizeof cache_directories / sizeof *cache_directories)

/* Opens the cache at c->path for c->owner: usable only if everything in it is safe. */
static void open_cache(cache_dir *c) {
    struct stat st;
    int unsafe = 0, fds[CACHE_DIRECTORIES];
    c->binaries = c->records = -1;
    c->root = open_root(c);
    if (c->root < 0)
        return;
    if (fstat(c->root, &st) || !directory_ok(&st, c->owner))
        unsafe = 1;
    for (size_t i = 0; i < CACHE_DIRECTORIES; i++)
        fds[i] = unsafe ? -1 : open_subdir(c->root, cache_directories[i], c->owner, &unsafe);
    for (size_t i = 0; i < CACHE_DIRECTORIES; i++) {
        if (!unsafe && !strcmp(cache_directories[i], ALLVM_STATIC_BINARIES))
            c->binaries = fds[i];
        else if (!unsafe && !strcmp(cache_directories[i], ALLVM_LAUNCH_RECORDS))
            c->records = fds[i];
        else if (fds[i] >= 0)
            close(fds[i]);
    }
    if (unsafe) {
        c->problem = "it or a directory in it is another user's, or writable by others";
        close(c->root);
        c->root = -1;
    }
}

/* An entry's payload is sealed (cache.py's seal()): payload, tag, magic, digest of payload and
 * tag, payload size (8 bytes LE), tag size (2 bytes LE). */
#define SEAL_TRAILER (sizeof ALLVM_SEAL_MAGIC - 1 + ALLVM_SEAL_DIGEST_SIZE + 8 + 2)

static void seal_digest(const uint8_t *signed_part, size_t n, uint8_t *out) {
    blake2b_ctx ctx;
    blake2b_init(&ctx, ALLVM_SEAL_DIGEST_SIZE);
    blake2b_update(&ctx, signed_part, n);
    blake2b_final(&ctx, out);
}

/* The payload size of the sealed entry in DATA, or -1 if it is damaged. */
static long long unseal(bytes e) {
    const size_t magic = sizeof ALLVM_SEAL_MAGIC - 1;
    if (e.size < SEAL_TRAILER)
        return -1;
    const uint8_t *t = e.data + e.size - SEAL_TRAILER;
    uint64_t size;
    memcpy(&size, t + magic + ALLVM_SEAL_DIGEST_SIZE, 8);
    uint16_t tag = u16(t + SEAL_TRAILER - 2);
    if (memcmp(t, ALLVM_SEAL_MAGIC, magic) || size > e.size ||
        size + tag + SEAL_TRAILER != e.size)
        return -1;
    uint8_t digest[ALLVM_SEAL_DIGEST_SIZE];
    seal_digest(e.data, size + tag, digest);
    return memcmp(digest, t + magic, ALLVM_SEAL_DIGEST_SIZE) ? -1 : (long long)size;
}

/* A file's identity: any change to it moves its ctime, which no user can set back (but see
 * no_writers()). */
typedef struct {
    unsigned long long dev, ino, size, mtime, ctime;
} identity;

static identity identify(const struct stat *st) {
    return (identity){st->st_dev, st->st_ino, st->st_size,
                      st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec,
                      st->st_ctim.tv_sec * 1000000000ULL + st->st_ctim.tv_nsec};
}

static int same(identity a, identity b) { return !memcmp(&a, &b, sizeof a); }

/* A file changed within the file system's timestamp granularity of a moment may change again
 * without its ctime moving ("racily clean", as git says): only older files are remembered. */
static int settled(identity id) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return id.ctime + ALLVM_RECORD_SETTLE_SECONDS * 1000000000ULL <
           now.tv_sec * 1000000000ULL + now.tv_nsec;
}

/* Whether no process has FD's file open for writing (the kernel grants a read lease only
 * then). Stores into an already-dirty page of a shared writable mapping change a file without
 * moving its ctime, so a file's identity says nothing while a writer exists. The lease is let
 * go at once; a writer opening the file meanwhile waits that long, and its lease-break signal
 * is SIGURG, which a starting program ignores (dispositions are default or ignored here).
 * Leases are the file owner's (and root's): anyone else hashes the allexe on every start. */
static int no_writers(int fd) {
    if (fcntl(fd, F_SETSIG, SIGURG) || fcntl(fd, F_SETLEASE, F_RDLCK))
        return 0;
    fcntl(fd, F_SETLEASE, F_UNLCK);
    return 1;
}

/* The launch record of an allexe (cache.py, "launch/"): its identity, its key and the identity
 * of the static binary last verified for it, so a start of a settled allexe whose binary was
 * verified hashes neither. */
typedef struct {
    identity allexe;
    char key[KEY_MAX];
    identity binary; /* all zero: not verified */
} launch_record;

static void record_name(identity allexe, char *out) {
    blake2b_ctx ctx;
    char id[64];
    uint8_t digest[ALLVM_KEY_DIGEST_SIZE];
    blake2b_init(&ctx, ALLVM_KEY_DIGEST_SIZE);
    digest_part(&ctx, ALLVM_CODEGEN_ID, strlen(ALLVM_CODEGEN_ID));
    int len = snprintf(id, sizeof id, "%llu:%llu", allexe.dev, allexe.ino);
    digest_part(&ctx, id, len);
    blake2b_final(&ctx, digest);
    hex(digest, sizeof digest, out);
}

/* Whether TEXT is a static binary key exactly: 8 upper-case hex digits, '-', 40 lower-case. */
static int is_key(const char *text, size_t n) {
    if (n != KEY_CHARS || text[8] != '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i], first = i < 8 ? 'A' : 'a';
        if (i != 8 && !(isdigit((unsigned char)c) || (c >= first && c <= first + 5)))
            return 0;
    }
    return 1;
}

/* A decimal field of a record: 1 to 20 digits, no sign, no leading zero, no overflow; *p moves
 * past it and one separator SEP. */
static int parse_number(const char **p, const char *end, char sep, unsigned long long *out) {
    const char *q = *p;
    unsigned long long v = 0;
    for (; q < end && isdigit((unsigned char)*q); q++) {
        if (q - *p >= 20 || v > (ULLONG_MAX - (*q - '0')) / 10)
            return 0;
        v = v * 10 + (*q - '0');
    }
    if (q == *p || (**p == '0' && q - *p > 1) || (sep ? q >= end || *q != sep : q != end))
        return 0; /* none, a leading zero (not as format_record writes), or no separator */
    *out = v;
    *p = q + (sep != 0);
    return 1;
}

/* A record's text, checked against its exact format (cache.py): 0 if it is anything else. */
static int parse_record(const char *text, size_t n, launch_record *r) {
    const char *p = text, *end = text + n;
    unsigned long long *a[] = {&r->allexe.dev, &r->allexe.ino, &r->allexe.size,
                               &r->allexe.mtime, &r->allexe.ctime};
    unsigned long long *b[] = {&r->binary.dev, &r->binary.ino, &r->binary.size,
                               &r->binary.mtime, &r->binary.ctime};
    for (int i = 0; i < 5; i++)
        if (!parse_number(&p, end, ' ', a[i]))
            return 0;
    if (end - p < KEY_CHARS + 1 || !is_key(p, KEY_CHARS) || p[KEY_CHARS] != ' ')
        return 0;
    memcpy(r->key, p, KEY_CHARS);
    r->key[KEY_CHARS] = 0;
    p += KEY_CHARS + 1;
    for (int i = 0; i < 5; i++)
        if (!parse_number(&p, end, i < 4 ? ' ' : 0, b[i]))
            return 0;
    return 1;
}

static int format_record(const launch_record *r, char *out, size_t n) {
    return snprintf(out, n, "%llu %llu %llu %llu %llu %s %llu %llu %llu %llu %llu",
                    r->allexe.dev, r->allexe.ino, r->allexe.size, r->allexe.mtime,
                    r->allexe.ctime, r->key, r->binary.dev, r->binary.ino, r->binary.size,
                    r->binary.mtime, r->binary.ctime);
}

#define RECORD_MAX 512

static int read_record(const cache_dir *c, identity allexe, launch_record *r) {
    char name[2 * ALLVM_KEY_DIGEST_SIZE + 1], text[RECORD_MAX];
    if (c->records < 0)
        return 0;
    record_name(allexe, name);
    ssize_t n = readlinkat(c->records, name, text, sizeof text);
    return n > 0 && n < (ssize_t)sizeof text && parse_record(text, n, r) &&
           same(r->allexe, allexe);
}

/* A record is a symbolic link (made under a name of this process's, then renamed into place:
 * atomic, and never a regular file); a cache that cannot be written is no error. */
static void write_record(cache_dir *c, const launch_record *r) {
    char name[2 * ALLVM_KEY_DIGEST_SIZE + 1], temp[sizeof name + 32], text[RECORD_MAX];
    int n = format_record(r, text, sizeof text);
    if (c->root < 0 || n <= 0 || n >= (int)sizeof text)
        return;
    if (c->records < 0) {
        int unsafe = 0;
        mkdirat(c->root, ALLVM_LAUNCH_RECORDS, 0700);
        c->records = open_subdir(c->root, ALLVM_LAUNCH_RECORDS, c->owner, &unsafe);
        if (c->records < 0)
            return;
    }
    record_name(r->allexe, name);
    snprintf(temp, sizeof temp, "%s.%d", name, (int)getpid());
    if (symlinkat(text, c->records, temp))
        return;
    if (renameat(c->records, temp, c->records, name))
        unlinkat(c->records, temp, 0);
}

/* ---------------------------------------------------------------- the two ways out */

/* The environment for the Python alley: the dynamic loader's variables renamed (execute.py),
 * so a program's LD_PRELOAD does not load into the interpreter; the program gets them back. */
static char **python_environ(void) {
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    for (size_t i = 0; env && i < n; i++) {
        env[i] = environ[i];
        if (!strncmp(environ[i], ALLVM_LOADER_PREFIX, strlen(ALLVM_LOADER_PREFIX)) &&
            (env[i] = malloc(strlen(ALLVM_HIDDEN_PREFIX) + strlen(environ[i]) + 1)))
            strcat(strcpy(env[i], ALLVM_HIDDEN_PREFIX), environ[i]);
        if (!env[i])
            return NULL;
    }
    return env;
}

/* The Python alley, with the arguments it was given (ARGS), the program's argv[0] when it is
 * not the default, and the signals the caller ignored (Python ignores SIGPIPE itself). It is
 * isolated (-I): the variables and the working directory of the program's caller choose no
 * module of alley's (a `signal.py` where a program is started would be imported). */
static int python(char **args, int nargs, const char *argv0) {
    char **py = calloc(nargs + 9, sizeof *py), mask[20], **env = python_environ();
    if (!py || !env) {
        fputs("alley: out of memory\n", stderr);
        return 126;
    }
    unsigned long long ignored = 0;
    for (int sig = 1; sig < 64; sig++) {
        struct sigaction sa;
        if (!sigaction(sig, NULL, &sa) && sa.sa_handler == SIG_IGN)
            ignored |= 1ULL << sig;
    }
    snprintf(mask, sizeof mask, "%llx", ignored);
    int n = 0;
    py[n++] = ALLVM_PYTHON;
    py[n++] = "-I";
    py[n++] = "-m";
    py[n++] = "allvm.tools.alley";
    py[n++] = "-ignored-signals";
    py[n++] = mask;
    if (argv0) { /* one word: a NAME that looks like an option (`-x`) is still NAME */
        py[n] = malloc(strlen("-argv0=") + strlen(argv0) + 1);
        if (!py[n]) {
            fputs("alley: out of memory\n", stderr);
            return 126;
        }
        strcat(strcpy(py[n++], "-argv0="), argv0);
    }
    memcpy(py + n, args, nargs * sizeof *args);
    py[n + nargs] = NULL;
    execve(ALLVM_PYTHON, py, env);
    fprintf(stderr, "alley: cannot start the Python alley '%s': %s\n", ALLVM_PYTHON,
            strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

/* The file's SIZE bytes (read, not mapped: a file truncated under a mapping would kill this
 * process with SIGBUS); NULL data if it cannot be read whole. */
static bytes read_file(int fd, size_t size) {
    uint8_t *data = size ? malloc(size) : NULL;
    size_t done = 0;
    while (data && done < size) {
        ssize_t n = pread(fd, data + done, size - done, done);
        if (n <= 0) {
            free(data);
            return (bytes){NULL, 0};
        }
        done += n;
    }
    return (bytes){data, data ? size : 0};
}

/* The allexe's key: from its launch record in C when that is current and believable, else
 * computed from the bytes the file holds now. */
static int allexe_key(int fd, const cache_dir *c, launch_record *r, int *known) {
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > ALLVM_DEFAULT_SIZE_LIMIT)
        return 0;
    identity id = identify(&st);
    *known = c && c->records >= 0 && no_writers(fd) && read_record(c, id, r);
    if (*known)
        return 1;
    bytes f = read_file(fd, st.st_size);
    int ok = f.data && static_binary_key(f, r->key) && !fstat(fd, &st) && same(identify(&st), id);
    free((void *)f.data);
    r->allexe = id;
    memset(&r->binary, 0, sizeof r->binary);
    return ok;
}

/* An open descriptor of the allexe's static binary in cache C if it is there, the owner's
 * and sealed (verified once per binary file: the record remembers it). */
static int cached_binary(const cache_dir *c, launch_record *r, int *changed) {
    struct stat st;
    int fd = c->binaries < 0 ? -1
                             : openat(c->binaries, r->key,
                                      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != c->owner) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    identity id = identify(&st);
    if (same(id, r->binary))
        return fd;
    bytes f = read_file(fd, st.st_size);
    int sound = f.data && unseal(f) >= 0;
    free((void *)f.data);
    if (!sound) {
        close(fd);
        return -1;
    }
    if (settled(id)) {
        r->binary = id;
        *changed = 1;
    }
    return fd;
}

/* Whether the sealed entry FD holds TAG as its tag (cache.py's seal()): read from its trailer. */
static int tagged(int fd, const char *tag) {
    struct stat st;
    uint8_t trailer[SEAL_TRAILER];
    char found[64];
    size_t n = strlen(tag);
    return n <= sizeof found && !fstat(fd, &st) && st.st_size >= (off_t)(SEAL_TRAILER + n) &&
           pread(fd, trailer, SEAL_TRAILER, st.st_size - SEAL_TRAILER) == SEAL_TRAILER &&
           u16(trailer + SEAL_TRAILER - 2) == n &&
           pread(fd, found, n, st.st_size - SEAL_TRAILER - n) == (ssize_t)n &&
           !memcmp(found, tag, n);
}

/* A stand-in binary (linked from fast-tier objects: allvm/native/promote.py) runs while the
 * optimized one is built in the background. When no build holds the cache's promotion lock
 * (the one started with it was killed), this start begins one, detached, as the Python alley
 * would: its own session, reparented to init, stdio on /dev/null. */
static void promote(const cache_dir *c, const char *file) {
    char path[PATH_MAX], cwd[PATH_MAX] = "";
    int lock = openat(c->binaries, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int idle = lock >= 0 && !flock(lock, LOCK_EX | LOCK_NB);
    if (lock >= 0)
        close(lock); /* and with it the lock: the promoter takes it */
    if (!idle || (file[0] != '/' && !getcwd(cwd, sizeof cwd)) ||
        snprintf(path, sizeof path, "%s%s%s", cwd, *cwd ? "/" : "", file) >= (int)sizeof path)
        return;
    char **env = python_environ();
    pid_t pid = env ? fork() : -1;
    if (pid == 0) {
        setsid();
        if (fork() == 0) {
            int null = open("/dev/null", O_RDWR);
            char *args[] = {ALLVM_PYTHON, "-I", "-m", ALLVM_PROMOTER, path, NULL};
            if (null >= 0 && dup2(null, 0) >= 0 && dup2(null, 1) >= 0 && dup2(null, 2) >= 0)
                execve(ALLVM_PYTHON, args, env);
        }
        _exit(0);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* `alley -launcher-key FILE`: the key this launcher computes for FILE, or "defer" (exit 3)
 * where it leaves FILE to the Python alley. A diagnostic, and how the tests hold both sides
 * to one format. */
static int print_key(const char *path) {
    launch_record r = {0};
    int known, fd = OPEN(path, O_RDONLY | O_NONBLOCK);
    int ok = fd >= 0 && allexe_key(fd, NULL, &r, &known);
    puts(ok ? r.key : "defer");
    return ok ? 0 : 3;
}

/* ---------------------------------------------------------------- how it was started */

/* What a start asks for: the allexe, the program's argv (argv[0] already the program's), and
 * what the Python alley is given if the launcher does not answer. */
typedef struct {
    const char *file;
    char **argv;
    char **python_args;
    int python_nargs;
    const char *python_argv0;
    int force_static; /* the optimized binary, not a stand-in (allvm/native/promote.py) */
} start;

/* Runs the allexe's static binary from the user's cache or the system cache, else hands the
 * start to the Python alley. */
static int launch(const start *s) {
    const char *policy = getenv("ALLVM_POLICY");
    /* Other static settings (allvm/native/settings.py) key other binaries: only the Python
     * side knows this machine's CPU as LLVM names it. */
    if ((policy && *policy) || getenv("ALLVM_SIZE_LIMIT") || getenv(ALLVM_CPU_VARIABLE) ||
        getenv(ALLVM_CARRY_VARIABLE))
        return python(s->python_args, s->python_nargs, s->python_argv0);
    cache_dir user = {.owner = geteuid()}, system = {.owner = 0};
    const char *system_path = getenv("ALLVM_SYSTEM_CACHE");
    snprintf(system.path, sizeof system.path, "%s",
             system_path && *system_path ? system_path : ALLVM_SYSTEM_CACHE);
    if (user_cache_path(user.path))
        open_cache(&user);
    else
        user.root = user.binaries = user.records = -1;
    launch_record r = {0};
    int known = 0, changed = 0, fd = -1;
    int allexe = OPEN(s->file, O_RDONLY | O_NONBLOCK);
    if (allexe >= 0 && allexe_key(allexe, &user, &r, &known)) {
        fd = cached_binary(&user, &r, &changed);
        if (fd >= 0 && tagged(fd, ALLVM_INTERIM_TAG)) {
            if (s->force_static) { /* the Python alley builds it */
                close(fd);
                return python(s->python_args, s->python_nargs, s->python_argv0);
            }
            promote(&user, s->file);
        }
        if (fd < 0) {
            open_cache(&system);
            fd = cached_binary(&system, &r, &changed);
        }
        if ((!known || changed) && settled(r.allexe))
            write_record(&user, &r);
    }
    if (fd < 0)
        return python(s->python_args, s->python_nargs, s->python_argv0);
    if (user.problem)
        fprintf(stderr, "alley: warning: cache '%s' not used (not safe: %s); running uncached\n",
                user.path, user.problem);
    fexecve(fd, s->argv, environ);
    close(fd);
    return python(s->python_args, s->python_nargs, s->python_argv0);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The file the kernel was asked to run, as named: the allexe itself when it was started
 * through its `#!` line (the kernel then hands alley that name as argv[1]). */
static const char *exec_name(void) { return (const char *)getauxval(AT_EXECFN); }

/* The path of this launcher's own file, or NULL. /proc/self/exe names it, up to PATH_MAX;
 * beyond that, the name it was run by (links in it followed) once it is shown to be the same
 * file, as /proc/self/exe opened (not read) shows it. */
static char *own_file(void) {
    char *path = malloc(PATH_MAX), target[PATH_MAX];
    ssize_t n = path ? readlink("/proc/self/exe", path, PATH_MAX) : -1;
    if (n > 0 && n < PATH_MAX) {
        path[n] = 0;
        return path;
    }
    struct stat self, named;
    const char *name = exec_name();
    int fd = OPEN("/proc/self/exe", O_RDONLY);
    if (!path || fd < 0 || fstat(fd, &self) || !name || strlen(name) >= PATH_MAX) {
        if (fd >= 0)
            close(fd);
        free(path);
        return NULL;
    }
    close(fd);
    strcpy(path, name);
    for (int links = 0; links < 40 && (n = readlink(path, target, sizeof target)) > 0; links++) {
        size_t dir = target[0] == '/' ? 0 : (size_t)(base_name(path) - path);
        if (n >= PATH_MAX || dir + n >= PATH_MAX)
            break;
        memcpy(path + dir, target, n);
        path[dir + n] = 0;
    }
    if (stat(path, &named) || named.st_dev != self.st_dev || named.st_ino != self.st_ino) {
        free(path);
        return NULL;
    }
    return path;
}

/* A copy of the launcher not named alley stands for the allexe beside it: NAME ARGS... runs
 * NAME.allexe with argv[0] as the caller gave it. Decided from its own file alone: one that
 * cannot be found fails closed, never running an argument as the program. */
static int stub(char *self, int argc, char **argv) {
    size_t n = strlen(self);
    char *allexe = realloc(self, n + sizeof ".allexe");
    if (!allexe) {
        fputs("alley: out of memory\n", stderr);
        return 126;
    }
    memcpy(allexe + n, ".allexe", sizeof ".allexe");
    char *python_args[argc + 2];
    python_args[0] = "--";
    python_args[1] = allexe;
    memcpy(python_args + 2, argv + 1, argc * sizeof *argv); /* and argv[argc], NULL */
    start s = {allexe, argv, python_args, argc + 1, argv[0]};
    return launch(&s);
}

/* `alley [-force-static] [-argv0 NAME] [--] ALLEXE ARGS...`, as a user types it (any other
 * option is the Python alley's); NAME, also from `exec -a NAME alley`, is the program's
 * argv[0], ALLEXE as given otherwise. */
static int alley(int argc, char **argv) {
    const char *caller_name = strcmp(base_name(argv[0]), "alley") ? argv[0] : NULL;
    const char *argv0 = caller_name;
    int i = 1, force_static = 0;
    if (argc == 3 && !strcmp(argv[1], "-launcher-key"))
        return print_key(argv[2]);
    while (i < argc && argv[i][0] == '-') {
        const char *o = argv[i] + (argv[i][1] == '-' && argv[i][2]);
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else if (!strcmp(o, "-force-static")) {
            force_static = 1;
            i++;
        } else if (!strcmp(o, "-argv0") && i + 1 < argc) {
            argv0 = argv[i + 1];
            i += 2;
        } else {
            return python(argv + 1, argc - 1, caller_name);
        }
    }
    if (i >= argc)
        return python(argv + 1, argc - 1, caller_name);
    char *program[argc - i + 1];
    memcpy(program, argv + i, (argc - i + 1) * sizeof *argv);
    if (argv0)
        program[0] = (char *)argv0;
    start s = {argv[i], program, argv + 1, argc - 1, caller_name, force_static};
    return launch(&s);
}

/* How the kernel starts an allexe: through its `#!` line (alley FILE ARGS...), or binfmt_misc
 * (alley-binfmt FILE ARGV0 ARGS...). FILE is never an option, whatever its name. */
static int kernel_start(int binfmt, int argc, char **argv) {
    char *python_args[argc + 1];
    python_args[0] = "--";
    memcpy(python_args + 1, argv + 1, argc * sizeof *argv);
    if (!binfmt) {
        start s = {argv[1], argv + 1, python_args, argc, NULL};
        return launch(&s);
    }
    memmove(python_args + 2, python_args + 3, (argc - 2) * sizeof *argv); /* ARGV0 goes */
    start s = {argv[1], argv + 2, python_args, argc - 1, argv[2]};
    return launch(&s);
}

#ifndef ALLVM_FUZZ
int main(int argc, char **argv) {
    char *self = own_file();
    if (!self) { /* which file this is decides what runs: never guess */
        fputs("alley: cannot find this launcher's own file (is /proc mounted?); "
              "not running anything\n", stderr);
        return 126;
    }
    if (strcmp(base_name(self), "alley"))
        return stub(self, argc, argv);
    free(self);
    int binfmt = !strcmp(base_name(argv[0]), ALLVM_BINFMT_NAME);
    if (binfmt && argc < 3) {
        fprintf(stderr, "alley: %s runs FILE ARGV0 ARGS..., as binfmt_misc starts it\n",
                ALLVM_BINFMT_NAME);
        return 126;
    }
    const char *name = exec_name();
    if (binfmt || (argc > 1 && name && !strcmp(name, argv[1])))
        return kernel_start(binfmt, argc, argv);
    return alley(argc, argv);
}
#endif
