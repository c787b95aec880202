#!/usr/bin/env python3
# Prints the slicing-by-8 CRC-32C tables pasted into client/crc32c.c.
# Kept so the 2,048 constants there can be regenerated and reviewed, not trusted.
P = 0x82F63B78  # Castagnoli polynomial, reflected
T = [[0] * 256 for _ in range(8)]
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (P if c & 1 else 0)
    T[0][i] = c
for k in range(1, 8):
    for i in range(256):
        T[k][i] = (T[k - 1][i] >> 8) ^ T[0][T[k - 1][i] & 0xFF]
print("static const uint32_t crc32c_table[8][256] = {")
for k in range(8):
    print("    {")
    for r in range(0, 256, 6):
        print("        " + " ".join("0x%08Xu," % v for v in T[k][r:r + 6]))
    print("    },")
print("};")
