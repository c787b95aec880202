/* secret.h: secrets kept in files (token_file, upstream_token_file,
 * jwt_keys_file). A relative name is looked up in the directory systemd's
 * LoadCredential= fills ($CREDENTIALS_DIRECTORY, passed in by main), else
 * taken as is. Reading never logs the content. */
#ifndef PROXY_SECRET_H
#define PROXY_SECRET_H

#include <stddef.h>

#define SECRET_MAX_BYTES (1u << 20)

/* The whole file, NUL-terminated: 0, or -1 with why naming the file. */
int secret_read(const char *name, const char *creds_dir, char **text, size_t *len, char *why,
                size_t cap);
/* Split `text` in place into its lines, trimmed of surrounding blanks;
 * empty lines and lines starting with '#' are skipped. *lines points into
 * text (free only the array). 0, or -1 on OOM. */
int secret_lines(char *text, char ***lines, size_t *n);
/* The first such line of `text` ("" when none), trimmed, in place. */
const char *secret_first_line(char *text);

#endif
