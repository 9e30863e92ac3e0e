/* Fetching a file over HTTP(S) with libcurl, as keras.utils.get_file does. */
#ifndef LM_DOWNLOAD_H
#define LM_DOWNLOAD_H

#include "lamina/context.h"
#include "lamina/status.h"

/* Downloads url to dest: the bytes go to a temporary file beside dest, which
 * is renamed onto dest only when the transfer succeeded and its MD5 equals
 * md5_hex (NULL skips the check); otherwise the temporary file is deleted
 * and the message names the URL and the reason (HTTP status, checksums).
 * Prints Keras's "Downloading data from <url>" line and progress bar to
 * stdout. Without libcurl it fails with LM_ERR_UNSUPPORTED. */
lm_status lm_download(lm_ctx *ctx, const char *url, const char *dest, const char *md5_hex);

#endif
