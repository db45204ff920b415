/* cksum: CRC-32 (zlib polynomial) and Adler-32 of each file or stdin. */
#include <stdint.h>
#include <stdio.h>

static uint32_t crc_table[256];

static void init_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static int sum(FILE *f, const char *name) {
    uint32_t crc = 0xFFFFFFFFu, a = 1, b = 0;
    unsigned char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n; i++) {
            crc = crc_table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
            a = (a + buf[i]) % 65521;
            b = (b + a) % 65521;
        }
        total += n;
    }
    printf("crc32=%08x adler32=%08x %zu %s\n", crc ^ 0xFFFFFFFFu, (b << 16) | a, total, name);
    return 0;
}

int main(int argc, char **argv) {
    init_table();
    if (argc < 2) return sum(stdin, "-");
    int status = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { perror(argv[i]); status = 1; continue; }
        sum(f, argv[i]);
        fclose(f);
    }
    return status;
}
