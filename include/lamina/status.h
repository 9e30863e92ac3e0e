/* Status codes returned by every fallible Lamina function. */
#ifndef LAMINA_STATUS_H
#define LAMINA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lm_status {
    LM_OK = 0,
    LM_ERR_ARG,         /* an argument is invalid (NULL handle, out-of-range value) */
    LM_ERR_SHAPE,       /* shapes do not fit together */
    LM_ERR_DTYPE,       /* element types do not fit together */
    LM_ERR_OOM,         /* memory could not be allocated */
    LM_ERR_IO,          /* a file could not be read or written */
    LM_ERR_FORMAT,      /* a file or string is malformed */
    LM_ERR_UNSUPPORTED, /* a valid request Lamina does not implement */
    LM_ERR_STATE,       /* a call made in the wrong order (e.g. fit before compile) */
    LM_ERR_NUMERIC      /* a computation produced NaN or Inf where it must not */
} lm_status;

/* Short English name of a status code ("ok", "invalid argument", ...). */
const char *lm_status_str(lm_status s);

#ifdef __cplusplus
}
#endif
#endif
