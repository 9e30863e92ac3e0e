/* Reading numeric columns of a CSV file into a float32 matrix, as one would
 * with pandas.read_csv(path, usecols=...).values.astype("float32"). */
#ifndef LAMINA_CSV_H
#define LAMINA_CSV_H

#include <stdbool.h>
#include "lamina/context.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_csv_opts {
    bool no_header; /* the first line is data (default: it names the columns) */
    char sep;       /* field separator, default ',' */
    /* Columns to read, in this order: by header name, or by 0-based index
     * (not both). Default: every column. */
    const char *const *columns;
    int n_columns;
    const int *indices;
    int n_indices;
} lm_csv_opts;

/* Reads the selected columns of every row into a new float32 tensor of shape
 * (rows, columns). The format is RFC 4180: fields may be quoted ("1949-01",
 * "a,b", "say ""hi""", line breaks inside quotes); lines end with \n or \r\n,
 * and the last one may lack it; blank lines and a UTF-8 byte order mark are
 * skipped. Selected cells must be numbers as strtod reads them (nan and inf
 * included), quoted or not, optionally surrounded by spaces; other columns
 * may hold anything. A file with a header and no rows gives (0, columns).
 *
 * Returns NULL with a message in ctx naming the file and line for: a missing
 * or unreadable file, an empty file, a non-numeric or empty selected cell, a
 * row with a different number of fields than the first (ragged), an
 * unterminated quote, an unknown column name or index out of range.
 *
 *     const char *cols[] = {"Passengers"};
 *     lm_tensor *t = lm_csv_load(ctx, "airline-passengers.csv",
 *                                (lm_csv_opts){.columns = cols, .n_columns = 1});
 */
lm_tensor *lm_csv_load(lm_ctx *ctx, const char *path, lm_csv_opts o);

#ifdef __cplusplus
}
#endif
#endif
