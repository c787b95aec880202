# Embed.cmake: turns a file into a C array, in script mode:
#   cmake -DINPUT=f.json -DOUTPUT=f.c -DNAME=sym -P Embed.cmake
# defines `const char sym[]` (the bytes, then a NUL) and `const size_t sym_len`.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
get_filename_component(src ${INPUT} NAME)
file(WRITE ${OUTPUT}.tmp "/* Generated from ${src} by cmake/Embed.cmake: do not edit. */\n#include <stddef.h>\n\nconst char ${NAME}[] = {\n${bytes}0x00};\nconst size_t ${NAME}_len = ${len};\n")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
