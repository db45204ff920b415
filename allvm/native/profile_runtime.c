/* The runtime of a profile run (allvm/native/profile.py): linked into the instrumented program
 * only. Each instrumented module registers its counter array from a constructor; at exit the
 * arrays are written to a new file in $ALLVM_PROFILE_DIR, one per process, so that every
 * process a profile run starts (a shell loop, a fork) leaves its own counts, summed later.
 *
 * File: FILE_MAGIC, then per module: the module's id length (u32 LE), its id, the number of
 * counters (u64 LE), the counters (u64 LE each). x86-64 is little-endian: written as they are.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_MAGIC "ALLVMPROFILE1\n"

/* What an instrumented module passes: laid out as the module's { ptr, ptr, i64, ptr }. */
struct allvm_profile_module {
    const char *id;
    uint64_t *counters;
    uint64_t count;
    struct allvm_profile_module *next;
};

static struct allvm_profile_module *modules;

static int write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n <= 0)
            return -1;
        p += n, size -= (size_t)n;
    }
    return 0;
}

static void write_counts(void) {
    const char *dir = getenv("ALLVM_PROFILE_DIR");
    if (!dir || !*dir)
        return; /* run outside a profile run: nothing asked for counts */
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%ld.counts", dir, (long)getpid()) >= (int)sizeof path)
        return;
    /* O_EXCL: a file of another process (a reused pid) is never overwritten. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int bad = write_all(fd, FILE_MAGIC, strlen(FILE_MAGIC));
    for (struct allvm_profile_module *m = modules; m && !bad; m = m->next) {
        uint32_t length = (uint32_t)strlen(m->id);
        bad = write_all(fd, &length, sizeof length) || write_all(fd, m->id, length) ||
              write_all(fd, &m->count, sizeof m->count) ||
              write_all(fd, m->counters, m->count * sizeof *m->counters);
    }
    close(fd);
    if (bad)
        unlink(path); /* a torn file would be read as counts: none is better */
}

void __allvm_profile_register(struct allvm_profile_module *m) {
    if (!modules)
        atexit(write_counts); /* registered first, so it runs after the program's handlers */
    m->next = modules;
    modules = m;
}
