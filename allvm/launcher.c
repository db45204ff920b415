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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* `<CRC of main.bc>-<digest>`; KEY_CHARS is spelled out for scanf's field width */
#define KEY_CHARS 49
_Static_assert(KEY_CHARS == 8 + 1 + 2 * ALLVM_KEY_DIGEST_SIZE, "key length");
#define KEY_MAX (KEY_CHARS + 1)

static void finish_key(blake2b_ctx *key, uint32_t main_crc, char *out) {
    uint8_t digest[ALLVM_KEY_DIGEST_SIZE];
    blake2b_final(key, digest);
    snprintf(out, 10, "%08X-", main_crc);
    hex(digest, sizeof digest, out + 9);
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
    size_t *names = malloc(count * 2 * sizeof *names);
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
        for (size_t j = 0; ok && j < i; j++)
            ok = !(names[2 * j + 1] == nlen && !memcmp(f.data + names[2 * j], f.data + name, nlen));
        names[2 * i] = name;
        names[2 * i + 1] = nlen;
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
    free(names);
    if (ok)
        finish_key(&key, main_crc, out);
    return ok;
}

/* ---------------------------------------------------------------- the cache */

static char root[4096];

static int cache_root(void) {
    const char *dir = getenv("ALLVM_CACHE_DIR"), *base = getenv("XDG_CACHE_HOME");
    if (dir && *dir)
        return snprintf(root, sizeof root, "%s", dir) < (int)sizeof root;
    if (base && *base)
        return snprintf(root, sizeof root, "%s/allvm", base) < (int)sizeof root;
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        if (!pw)
            return 0;
        home = pw->pw_dir;
    }
    return snprintf(root, sizeof root, "%s/.cache/allvm", home) < (int)sizeof root;
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

/* A file's identity: any change to it moves its ctime, which no user can set back. */
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

/* The launch record of an allexe (cache.py, "launch/"): its identity, its key and the identity
 * of the static binary last verified for it, so a start of a settled allexe whose binary was
 * verified hashes neither. */
typedef struct {
    identity allexe;
    char key[KEY_MAX];
    identity binary; /* all zero: not verified */
} launch_record;

static void record_path(identity allexe, char *out, size_t n) {
    blake2b_ctx ctx;
    char id[64];
    uint8_t digest[ALLVM_KEY_DIGEST_SIZE];
    char name[2 * ALLVM_KEY_DIGEST_SIZE + 1];
    blake2b_init(&ctx, ALLVM_KEY_DIGEST_SIZE);
    digest_part(&ctx, ALLVM_CODEGEN_ID, strlen(ALLVM_CODEGEN_ID));
    int len = snprintf(id, sizeof id, "%llu:%llu", allexe.dev, allexe.ino);
    digest_part(&ctx, id, len);
    blake2b_final(&ctx, digest);
    hex(digest, sizeof digest, name);
    snprintf(out, n, "%s/launch/%s", root, name);
}

#define STR(x) #x
#define WIDTH(x) STR(x)
#define RECORD_FORMAT                                                                          \
    "%llu %llu %llu %llu %llu %" WIDTH(KEY_CHARS) "s %llu %llu %llu %llu %llu"
#define RECORD_FIELDS(r, p)                                                                    \
    p((r).allexe.dev), p((r).allexe.ino), p((r).allexe.size), p((r).allexe.mtime),            \
        p((r).allexe.ctime), (r).key, p((r).binary.dev), p((r).binary.ino),                    \
        p((r).binary.size), p((r).binary.mtime), p((r).binary.ctime)
#define VALUE(x) x
#define ADDRESS(x) &x

static int read_record(identity allexe, launch_record *r) {
    char path[4200], buf[512];
    record_path(allexe, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    long long size = n > 0 ? unseal((bytes){(uint8_t *)buf, n}) : -1;
    if (size < 0 || size >= (long long)sizeof buf)
        return 0;
    buf[size] = 0;
    return sscanf(buf, RECORD_FORMAT, RECORD_FIELDS(*r, ADDRESS)) == 11 &&
           same(r->allexe, allexe);
}

/* Written as every cache entry is: in the scratch directory `tmp/`, named after this process,
 * then renamed into place; a cache that cannot be written is no error. */
static void write_record(const launch_record *r) {
    char path[4200], scratch[4200], temp[4300], payload[512], sealed[600];
    int n = snprintf(payload, sizeof payload, RECORD_FORMAT, RECORD_FIELDS(*r, VALUE));
    if (n <= 0 || n >= (int)sizeof payload)
        return;
    const size_t magic = sizeof ALLVM_SEAL_MAGIC - 1;
    uint64_t size = n;
    memcpy(sealed, payload, n);
    memcpy(sealed + n, ALLVM_SEAL_MAGIC, magic);
    seal_digest((uint8_t *)payload, n, (uint8_t *)sealed + n + magic);
    memcpy(sealed + n + magic + ALLVM_SEAL_DIGEST_SIZE, &size, 8);
    memset(sealed + n + SEAL_TRAILER - 2, 0, 2);
    record_path(r->allexe, path, sizeof path);
    snprintf(scratch, sizeof scratch, "%s/launch", root);
    mkdir(scratch, 0755);
    snprintf(scratch, sizeof scratch, "%s/tmp", root);
    snprintf(temp, sizeof temp, "%s/%d-launch", scratch, (int)getpid());
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 10; attempt++) {
        if (mkdir(scratch, 0755) && errno != EEXIST)
            return;
        fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 && errno != ENOENT) /* ENOENT: another run removed tmp/ just now */
            return;
    }
    if (fd < 0)
        return;
    int written = write(fd, sealed, n + SEAL_TRAILER) == (ssize_t)(n + SEAL_TRAILER);
    if (close(fd) || !written || rename(temp, path))
        unlink(temp);
    rmdir(scratch); /* leave nothing behind: it goes once empty */
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
    if (argv0) {
        py[n++] = "-argv0";
        py[n++] = (char *)argv0;
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

/* The allexe's key: from its launch record when `records` allows and that is current, else
 * computed. */
static int allexe_key(const char *path, launch_record *r, int *known, int records) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
        st.st_size > ALLVM_DEFAULT_SIZE_LIMIT) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    identity id = identify(&st);
    *known = records && read_record(id, r);
    if (*known) {
        close(fd);
        return 1;
    }
    bytes f = read_file(fd, st.st_size);
    int ok = f.data && static_binary_key(f, r->key) && !fstat(fd, &st) && same(identify(&st), id);
    free((void *)f.data);
    close(fd);
    r->allexe = id;
    memset(&r->binary, 0, sizeof r->binary);
    return ok;
}

/* An open descriptor of the allexe's cached static binary if it is there and sound. */
static int cached_binary(launch_record *r, int *changed) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/%s", root, ALLVM_STATIC_BINARIES, r->key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
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

/* `alley -launcher-key FILE`: the key this launcher computes for FILE, or "defer" (exit 3)
 * where it leaves FILE to the Python alley. A diagnostic, and how the tests hold both sides
 * to one format. */
static int print_key(const char *path) {
    launch_record r = {0};
    int known;
    int ok = allexe_key(path, &r, &known, 0);
    puts(ok ? r.key : "defer");
    return ok ? 0 : 3;
}

/* The allexe a copy of the launcher stands for: its own file's path plus `.allexe` (a symlink
 * to it resolves to the copy, so `src/sort -> bin/sort` works); none for the launcher's own
 * file, named alley (alley-binfmt is a symlink to it). */
static char stub_allexe[PATH_MAX + sizeof ".allexe"];

static int is_stub(void) {
    ssize_t n = readlink("/proc/self/exe", stub_allexe, PATH_MAX);
    if (n <= 0 || n >= PATH_MAX)
        return 0;
    stub_allexe[n] = 0;
    const char *base = strrchr(stub_allexe, '/');
    if (!strcmp(base ? base + 1 : stub_allexe, "alley"))
        return 0;
    memcpy(stub_allexe + n, ".allexe", sizeof ".allexe");
    return 1;
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int binfmt = !strcmp(name, "alley-binfmt");
    if (binfmt && argc < 3)
        return python(argv + 1, argc - 1, NULL);
    /* The program's argv[0] where it is not ALLEXE as given, and the arguments that follow
     * alley's own: binfmt_misc's FILE ARGV0 ARGS... becomes FILE ARGS... */
    const char *argv0 = binfmt ? argv[2] : strcmp(name, "alley") ? argv[0] : NULL;
    if (binfmt)
        argv[2] = argv[1];
    char **args = argv + 1 + binfmt;
    int nargs = argc - 1 - binfmt;
    char *stub_args[argc + 1];
    if (argv0 && !binfmt && is_stub()) { /* NAME ARGS... is alley NAME.allexe ARGS... */
        stub_args[0] = stub_allexe;
        memcpy(stub_args + 1, argv + 1, argc * sizeof *argv); /* and argv[argc], NULL */
        args = stub_args;
        nargs = argc;
    } else if (nargs == 2 && !strcmp(args[0], "-launcher-key")) {
        return print_key(args[1]);
    }
    const char *policy = getenv("ALLVM_POLICY");
    if (nargs < 1 || args[0][0] == '-' || (policy && *policy) || getenv("ALLVM_SIZE_LIMIT") ||
        !cache_root())
        return python(args, nargs, argv0);
    launch_record r = {0};
    int known = 0, changed = 0, fd = -1;
    int have_key = allexe_key(args[0], &r, &known, 1);
    if (have_key)
        fd = cached_binary(&r, &changed);
    if (have_key && (!known || changed) && settled(r.allexe))
        write_record(&r);
    if (fd < 0)
        return python(args, nargs, argv0);
    char *allexe = args[0];
    if (argv0)
        args[0] = (char *)argv0;
    fexecve(fd, args, environ);
    args[0] = allexe;
    close(fd);
    return python(args, nargs, argv0);
}
