/* Read one array of an xlmr_np golden bundle (.npy, format 1.0/2.0) in plain C and print it.
 *
 *     gcc -O2 -o read_bundle examples/read_bundle.c
 *     ./read_bundle BUNDLE/float64/layers.0.npy        # shape, then one value per line (%.17g)
 *
 * .npy layout: 6 bytes "\x93NUMPY", major and minor version bytes, the header length (little-endian u16 in
 * version 1, u32 in version 2), an ASCII header like {'descr': '<f8', 'fortran_order': False, 'shape': (2, 7, 32), }
 * and then the raw little-endian C-order data. `golden export` writes '<f8' (float64), '<f4' (float32) and '<i8'
 * (int64 inputs), C order; this reader assumes a little-endian machine.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FILE.npy\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    unsigned char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) { fprintf(stderr, "not .npy\n"); return 2; }
    uint32_t header_len = 0;
    unsigned char len_bytes[4] = {0};
    size_t len_size = magic[6] == 1 ? 2 : 4;
    if (fread(len_bytes, 1, len_size, f) != len_size) return 2;
    for (size_t i = 0; i < len_size; i++) header_len |= (uint32_t)len_bytes[i] << (8 * i);
    char *header = calloc(header_len + 1, 1);
    if (!header || fread(header, 1, header_len, f) != header_len) return 2;
    const char *descr = strstr(header, "'descr': '");
    const char *shape = strstr(header, "'shape': (");
    if (!descr || !shape || strstr(header, "'fortran_order': True")) { fprintf(stderr, "unsupported\n"); return 2; }
    descr += strlen("'descr': '");
    size_t count = 1;
    printf("shape");
    for (const char *p = shape + strlen("'shape': ("); *p && *p != ')';) {  /* "2, 7, 32" or "5," */
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        printf(" %ld", n);
        count *= (size_t)n;
        p = end;
    }
    printf("\n");
    for (size_t i = 0; i < count; i++) {
        if (strncmp(descr, "<f8", 3) == 0) {
            double v; if (fread(&v, 8, 1, f) != 1) return 2; printf("%.17g\n", v);
        } else if (strncmp(descr, "<f4", 3) == 0) {
            float v; if (fread(&v, 4, 1, f) != 1) return 2; printf("%.9g\n", (double)v);
        } else if (strncmp(descr, "<i8", 3) == 0) {
            int64_t v; if (fread(&v, 8, 1, f) != 1) return 2; printf("%lld\n", (long long)v);
        } else { fprintf(stderr, "unsupported dtype %.3s\n", descr); return 2; }
    }
    free(header);
    fclose(f);
    return 0;
}
