/* lm_summary: Keras 3's model.summary() (keras/src/utils/summary_utils.py)
 * as it prints to a stream that is not a terminal: the table Keras builds
 * with rich (HEAVY_HEAD box, a line between rows, cells wrapped at spaces
 * with "…" for words too long for their column), plain text without styles.
 * The width follows Keras: min(88 or 108, terminal columns - 4), the columns
 * taken from $COLUMNS, else stdout's terminal, else 80 (so 76 in files). */
#include "nn/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_COLS 4
#define ELLIPSIS "…"

/* ---- text cells: rich's wrapping for plain ASCII/UTF-8 text ---- */

/* Cells of a UTF-8 string (one per code point). */
static int cells(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the first `c` cells of s (n bytes). */
static size_t cell_bytes(const char *s, size_t n, int c) {
    size_t i = 0;
    while (i < n && c > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        c--;
    }
    return i;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* rich._wrap.divide_line: byte offsets where lines break. Words are
 * "\s*\S+\s*"; a word longer than the width is folded into width-sized
 * chunks when fold, else left whole on its own line. */
static int divide_line(const char *t, int width, bool fold, size_t *breaks, int max) {
    size_t n = strlen(t), pos = 0;
    int nb = 0, offset = 0;
    while (pos < n) {
        size_t start = pos, e = pos;
        while (e < n && is_space(t[e])) e++;
        if (e == n) break; /* trailing whitespace is no word */
        while (e < n && !is_space(t[e])) e++;
        size_t word_end = e; /* without the trailing whitespace */
        while (e < n && is_space(t[e])) e++;
        int word_len = cells(t + start, word_end - start), full = cells(t + start, e - start);
        if (width - offset >= word_len) {
            offset += full;
        } else if (word_len > width) {
            if (fold) {
                size_t s = start;
                while (s < e) {
                    size_t chunk = cell_bytes(t + s, e - s, width);
                    if (s && nb < max) breaks[nb++] = s;
                    if (s + chunk >= e) offset = cells(t + s, e - s);
                    s += chunk;
                }
            } else {
                if (start && nb < max) breaks[nb++] = start;
                offset = full;
            }
        } else if (offset && start) {
            if (nb < max) breaks[nb++] = start;
            offset = full;
        }
        pos = e;
    }
    return nb;
}

typedef struct lines {
    int n;
    char **s;
} lines;

static void lines_free(lines *l) {
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    l->n = 0;
    l->s = NULL;
}

/* Text.wrap with overflow "ellipsis" (table cells) or "fold" (console
 * lines), justified left (padded), right, or not at all ("default"). */
enum { J_DEFAULT, J_LEFT, J_RIGHT };
static lm_status wrap_text(const char *t, int width, int justify, bool fold, lines *out) {
    size_t n = strlen(t);
    size_t *breaks = malloc((n + 1) * sizeof *breaks); /* at most one per byte */
    out->n = 0;
    out->s = NULL;
    if (!breaks) return LM_ERR_OOM;
    int nb = divide_line(t, width, fold, breaks, (int)n + 1);
    out->s = calloc((size_t)nb + 1, sizeof *out->s);
    if (!out->s) {
        free(breaks);
        return LM_ERR_OOM;
    }
    for (int i = 0; i <= nb; i++) {
        size_t a = i ? breaks[i - 1] : 0, b = i < nb ? breaks[i] : n;
        /* rstrip_end: drop trailing whitespace beyond the width */
        int len = cells(t + a, b - a);
        if (len > width) {
            int ws = 0;
            while (b - (size_t)ws > a && is_space(t[b - (size_t)ws - 1])) ws++;
            int crop = ws < len - width ? ws : len - width;
            b -= (size_t)crop;
            len -= crop;
        }
        if (justify == J_RIGHT)
            while (b > a && is_space(t[b - 1])) b--, len--;
        bool cut = len > width && !fold;
        size_t keep = cut ? cell_bytes(t + a, b - a, width - 1) : b - a;
        int shown = cut ? width : len;
        int pad = justify != J_DEFAULT && shown < width ? width - shown : 0;
        char *s = malloc(keep + (size_t)pad + 4);
        if (!s) {
            free(breaks);
            return LM_ERR_OOM;
        }
        size_t o = 0;
        if (justify == J_RIGHT) {
            memset(s, ' ', (size_t)pad);
            o = (size_t)pad;
        }
        memcpy(s + o, t + a, keep);
        o += keep;
        if (cut) {
            memcpy(s + o, ELLIPSIS, sizeof ELLIPSIS - 1);
            o += sizeof ELLIPSIS - 1;
        }
        if (justify == J_LEFT) {
            memset(s + o, ' ', (size_t)pad);
            o += (size_t)pad;
        }
        s[o] = 0;
        out->s[out->n++] = s;
    }
    free(breaks);
    return LM_OK;
}

/* ---- a growing string ---- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
    size_t k = strlen(s);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

static void sb_rep(sbuf *b, const char *s, int times) {
    for (int i = 0; i < times; i++) sb_add(b, s);
}

/* ---- numbers and shapes as Keras formats them ---- */

/* f"{n:,}" */
static void commas(int64_t v, char *buf, size_t len) {
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t nd = strlen(digits), o = 0;
    if (v < 0 && o + 1 < len) buf[o++] = '-';
    for (size_t i = 0; i < nd && o + 2 < len; i++) {
        if (i && (nd - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

/* summary_utils.readable_memory_size */
static void readable_size(double bytes, char *buf, size_t len) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
    for (int i = 0; i < 6; i++) {
        if (bytes / 1024 < 1) {
            snprintf(buf, len, "%.2f %s", bytes, units[i]);
            return;
        }
        bytes /= 1024;
    }
    snprintf(buf, len, "%.2f %s", bytes, units[5]);
}

/* "(None, 26, 26, 32)"; a 1-tuple has no trailing comma in Keras's join. */
static void shape_text(lm_shape s, sbuf *b) {
    char d[32];
    sb_add(b, "(");
    for (int i = 0; i < s.ndim; i++) {
        if (s.dims[i] < 0)
            snprintf(d, sizeof d, "%sNone", i ? ", " : "");
        else
            snprintf(d, sizeof d, "%s%lld", i ? ", " : "", (long long)s.dims[i]);
        sb_add(b, d);
    }
    sb_add(b, ")");
}

/* ---- the model's graph as Keras's map_graph orders it ---- */

/* Nodes: model inputs 0..n_inputs-1, then call records. Operations: the
 * model inputs (InputLayers), then layers. */
typedef struct graph_info {
    int n_nodes;
    bool *in_graph;
    int *depth, *op_depth, *op_index;
    int n_ops;
    lm_layer **ops; /* NULL for an input's InputLayer */
    int *op_input;  /* the input of an InputLayer op, -1 for layers */
    int *order;     /* ops in summary order */
    int n_order;
} graph_info;

static int node_of(const lm_model *m, const lm_kt *t) {
    return t->input >= 0 ? t->input : m->n_inputs + t->call;
}

static int op_of_node(const lm_model *m, graph_info *g, int node) {
    if (node < m->n_inputs) return node;
    lm_layer *l = m->calls[node - m->n_inputs].layer;
    for (int k = m->n_inputs; k < g->n_ops; k++)
        if (g->ops[k] == l) return k;
    return -1;
}

/* _build_map_helper: depth-first from an output; post-order node list. */
static void visit(const lm_model *m, graph_info *g, int node, int *list, int *n_list,
                  int *counter) {
    if (g->in_graph[node]) return;
    int op = op_of_node(m, g, node);
    if (op >= 0 && g->op_index[op] < 0) g->op_index[op] = (*counter)++;
    if (node >= m->n_inputs) {
        const lm_call_rec *c = &m->calls[node - m->n_inputs];
        for (int i = 0; i < c->n_in; i++)
            if (c->in[i]) visit(m, g, node_of(m, c->in[i]), list, n_list, counter);
    }
    g->in_graph[node] = true;
    list[(*n_list)++] = node;
}

static void graph_free(graph_info *g) {
    free(g->in_graph);
    free(g->depth);
    free(g->op_depth);
    free(g->op_index);
    free(g->ops);
    free(g->op_input);
    free(g->order);
}

static lm_status graph_build(const lm_model *m, graph_info *g) {
    memset(g, 0, sizeof *g);
    g->n_nodes = m->n_inputs + m->n_calls;
    int max_ops = m->n_inputs + m->n_layers + 1;
    size_t nn = (size_t)g->n_nodes + 1, no = (size_t)max_ops;
    g->in_graph = calloc(nn, sizeof *g->in_graph);
    g->depth = calloc(nn, sizeof *g->depth);
    g->op_depth = calloc(no, sizeof *g->op_depth);
    g->op_index = malloc(no * sizeof *g->op_index);
    g->ops = calloc(no, sizeof *g->ops);
    g->op_input = malloc(no * sizeof *g->op_input);
    g->order = malloc(no * sizeof *g->order);
    int *list = malloc(nn * sizeof *list);
    bool *has_depth = calloc(no, sizeof *has_depth);
    if (!g->in_graph || !g->depth || !g->op_depth || !g->op_index || !g->ops || !g->op_input ||
        !g->order || !list || !has_depth) {
        free(list);
        free(has_depth);
        graph_free(g);
        return LM_ERR_OOM;
    }
    for (int i = 0; i < m->n_inputs; i++) g->op_input[g->n_ops++] = i;
    for (int i = 0; i < m->n_layers; i++) {
        g->ops[g->n_ops] = m->layers[i];
        g->op_input[g->n_ops++] = -1;
    }
    for (int k = 0; k < g->n_ops; k++) g->op_index[k] = -1;
    int n_list = 0, counter = 0;
    for (int o = 0; o < m->n_outputs; o++)
        if (m->outputs[o]) visit(m, g, node_of(m, m->outputs[o]), list, &n_list, &counter);
    /* Depths from the outputs back: a node is one deeper than its deepest consumer. */
    for (int i = n_list - 1; i >= 0; i--) {
        int node = list[i], op = op_of_node(m, g, node);
        int d = g->depth[node];
        if (op >= 0 && has_depth[op] && g->op_depth[op] > d) d = g->op_depth[op];
        if (op >= 0) {
            g->op_depth[op] = d;
            has_depth[op] = true;
        }
        g->depth[node] = d;
        if (node < m->n_inputs) continue;
        const lm_call_rec *c = &m->calls[node - m->n_inputs];
        for (int k = 0; k < c->n_in; k++) {
            if (!c->in[k]) continue;
            int p = node_of(m, c->in[k]);
            if (g->in_graph[p] && g->depth[p] < d + 1) g->depth[p] = d + 1;
        }
    }
    /* Inputs that no output needs are kept at depth 0, first among equals. */
    for (int i = 0; i < m->n_inputs; i++)
        if (!g->in_graph[i]) {
            g->in_graph[i] = true;
            g->depth[i] = g->op_depth[i] = 0;
            has_depth[i] = true;
            g->op_index[i] = -1;
        }
    /* Operations by decreasing depth, then traversal order. */
    for (int k = 0; k < g->n_ops; k++)
        if (has_depth[k]) g->order[g->n_order++] = k;
    for (int i = 1; i < g->n_order; i++) {
        int v = g->order[i], j = i;
        while (j > 0 && (g->op_depth[g->order[j - 1]] < g->op_depth[v] ||
                         (g->op_depth[g->order[j - 1]] == g->op_depth[v] &&
                          g->op_index[g->order[j - 1]] > g->op_index[v]))) {
            g->order[j] = g->order[j - 1];
            j--;
        }
        g->order[j] = v;
    }
    free(list);
    free(has_depth);
    return LM_OK;
}

/* print_summary's test: one node per depth, each with at most one input,
 * and no layer called twice. */
static bool sequential_like(const lm_model *m, const graph_info *g) {
    for (int a = 0; a < g->n_nodes; a++) {
        if (!g->in_graph[a]) continue;
        if (a >= m->n_inputs && m->calls[a - m->n_inputs].n_in > 1) return false;
        for (int b = a + 1; b < g->n_nodes; b++)
            if (g->in_graph[b] && g->depth[b] == g->depth[a]) return false;
    }
    for (int a = m->n_inputs; a < g->n_nodes; a++)
        for (int b = a + 1; b < g->n_nodes; b++)
            if (g->in_graph[a] && g->in_graph[b] &&
                m->calls[a - m->n_inputs].layer == m->calls[b - m->n_inputs].layer)
                return false;
    return true;
}

/* ---- rows ---- */

static int64_t layer_params(const lm_layer *l) {
    int64_t n = 0;
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) n += layer_params(l->inner[k]);
    for (int i = 0; i < l->n_weights; i++) n += lm_tensor_numel(l->w[i].value);
    return n;
}

/* Which call of its layer call record ci is (Keras's node_index). */
static int call_number(const lm_model *m, int ci) {
    int k = 0;
    for (int i = 0; i < ci; i++) k += m->calls[i].layer == m->calls[ci].layer;
    return k;
}

/* Output shape: the outputs of the layer's last call, "?" when never called. */
static void layer_shape(const lm_model *m, const lm_layer *l, sbuf *b) {
    int last = -1;
    for (int i = 0; i < m->n_calls; i++)
        if (m->calls[i].layer == l && m->calls[i].n_out > 0) last = i;
    if (last < 0) {
        sb_add(b, "?");
        return;
    }
    const lm_call_rec *c = &m->calls[last];
    if (c->n_out > 1) sb_add(b, "[");
    for (int i = 0; i < c->n_out; i++) {
        if (i) sb_add(b, ", ");
        shape_text(c->out[i]->shape, b);
    }
    if (c->n_out > 1) sb_add(b, "]");
}

static void connections(const lm_model *m, const graph_info *g, const lm_layer *l, sbuf *b) {
    size_t start = b->n;
    char buf[64];
    for (int ci = 0; ci < m->n_calls; ci++) {
        const lm_call_rec *c = &m->calls[ci];
        if (c->layer != l || !g->in_graph[m->n_inputs + ci]) continue;
        for (int k = 0; k < c->n_in; k++) {
            const lm_kt *t = c->in[k];
            if (!t) continue;
            if (b->n > start) sb_add(b, ", ");
            if (t->input >= 0) {
                sb_add(b, t->name);
                sb_add(b, "[0][0]");
            } else {
                sb_add(b, m->calls[t->call].layer->name);
                snprintf(buf, sizeof buf, "[%d][%d]", call_number(m, t->call), t->index);
                sb_add(b, buf);
            }
        }
    }
    if (b->n == start) sb_add(b, "-");
}

typedef struct table {
    int ncols;
    int n_rows, cap;
    char *(*rows)[MAX_COLS];
} table;

static lm_status add_row(table *t, sbuf *cellv) {
    if (t->n_rows == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char *(*r)[MAX_COLS] = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) return LM_ERR_OOM;
        t->rows = r;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++) {
        if (cellv[c].oom || !cellv[c].s) return LM_ERR_OOM;
        t->rows[t->n_rows][c] = cellv[c].s;
        cellv[c].s = NULL;
    }
    t->n_rows++;
    return LM_OK;
}

static void table_free(table *t) {
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->ncols; c++) free(t->rows[r][c]);
    free(t->rows);
}

/* One row: "name (Class)", shape, params and, for graphs, connections. */
static lm_status layer_row(const lm_model *m, const graph_info *g, int op, table *t) {
    sbuf cv[MAX_COLS] = {{0}};
    char num[48], buf[96];
    lm_layer *l = g ? g->ops[op] : m->layers[op];
    if (!l) { /* a model input's InputLayer */
        const lm_kt *in = m->inputs[g->op_input[op]];
        snprintf(buf, sizeof buf, " (InputLayer)");
        sb_add(&cv[0], in->name);
        sb_add(&cv[0], buf);
        shape_text(in->shape, &cv[1]);
        sb_add(&cv[2], "0");
        sb_add(&cv[3], "-");
    } else {
        sb_add(&cv[0], l->name);
        sb_add(&cv[0], " (");
        sb_add(&cv[0], l->vt->class_name);
        sb_add(&cv[0], ")");
        layer_shape(m, l, &cv[1]);
        if (l->built)
            commas(layer_params(l), num, sizeof num);
        else
            snprintf(num, sizeof num, "0 (unbuilt)");
        sb_add(&cv[2], num);
        if (t->ncols == 4) connections(m, g, l, &cv[3]);
    }
    lm_status st = add_row(t, cv);
    for (int c = 0; c < MAX_COLS; c++) free(cv[c].s);
    return st;
}

/* ---- layout and drawing ---- */

/* shutil.get_terminal_size().columns as Keras reads it. */
static int terminal_columns(void) {
    const char *env = getenv("COLUMNS");
    int cols = env ? atoi(env) : 0;
    if (cols > 0) return cols;
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

/* rich's ratio_reduce with unit ratios: takes `excess` cells off the widths. */
static void ratio_reduce(int excess, int *w, int n) {
    int total_ratio = n, remaining = excess;
    for (int i = 0; i < n; i++) {
        double share = (double)remaining / (double)total_ratio;
        int d = (int)nearbyint(share); /* Python's round: half to even */
        if (d > w[i]) d = w[i];
        w[i] -= d;
        remaining -= d;
        total_ratio--;
    }
}

/* Column widths including the one-space padding each side, as
 * Table._calculate_column_widths gives them for fixed-width columns. */
static lm_status column_widths(int line_length, const double *pos, int n, int *w) {
    int current = 0;
    for (int i = 0; i < n; i++) {
        int width = (int)(pos[i] * line_length) - current;
        if (width < 4) return LM_ERR_ARG;
        w[i] = width;
        current += width;
    }
    int max_width = line_length - (n + 1), total = 0; /* borders */
    for (int i = 0; i < n; i++) {
        w[i] += 2;
        if (w[i] > max_width) w[i] = max_width;
        total += w[i];
    }
    if (total > max_width) ratio_reduce(total - max_width, w, n);
    total = 0;
    for (int i = 0; i < n; i++) total += w[i];
    if (total < max_width) { /* expand: ratio_distribute over the widths */
        int extra = max_width - total, rem = total;
        for (int i = 0; i < n && rem > 0; i++) {
            int d = (int)ceil((double)w[i] * extra / rem);
            rem -= w[i];
            extra -= d;
            w[i] += d;
        }
    }
    return LM_OK;
}

/* rich's box.HEAVY_HEAD: rules (left, fill, divider, right) and cell bars. */
typedef struct box_line {
    const char *left, *fill, *mid, *right;
} box_line;
static const box_line box_top = {"┏", "━", "┳", "┓"}, box_head = {"┡", "━", "╇", "┩"},
                      box_row = {"├", "─", "┼", "┤"}, box_bottom = {"└", "─", "┴", "┘"};
static const char *const bar_head = "┃", *const bar_body = "│";

static void rule(sbuf *b, const box_line *bl, const int *w, int n) {
    sb_add(b, bl->left);
    for (int i = 0; i < n; i++) {
        if (i) sb_add(b, bl->mid);
        sb_rep(b, bl->fill, w[i]);
    }
    sb_add(b, bl->right);
    sb_add(b, "\n");
}

/* A row of cells wrapped to their columns, padded to the tallest: body
 * cells at the top, header cells at the bottom (rich aligns headers down). */
static lm_status draw_row(sbuf *b, const char *const *cellv, const int *w, const int *just, int n,
                          const char *bar, bool bottom) {
    lines ls[MAX_COLS] = {{0}};
    lm_status st = LM_OK;
    int height = 1;
    for (int c = 0; c < n && !st; c++) {
        st = wrap_text(cellv[c], w[c] - 2, just[c], false, &ls[c]);
        if (!st && ls[c].n > height) height = ls[c].n;
    }
    for (int r = 0; r < height && !st; r++) {
        sb_add(b, bar);
        for (int c = 0; c < n; c++) {
            sb_add(b, " ");
            int k = bottom ? r - (height - ls[c].n) : r;
            if (k >= 0 && k < ls[c].n)
                sb_add(b, ls[c].s[k]);
            else
                sb_rep(b, " ", w[c] - 2);
            sb_add(b, " ");
            sb_add(b, bar);
        }
        sb_add(b, "\n");
    }
    for (int c = 0; c < n; c++) lines_free(&ls[c]);
    return st;
}

/* console.print of a text line: folded at the console width, not padded. */
static lm_status print_line(sbuf *b, const char *text, int width) {
    lines ls;
    lm_status st = wrap_text(text, width, J_DEFAULT, true, &ls);
    for (int i = 0; !st && i < ls.n; i++) {
        sb_add(b, ls.s[i]);
        sb_add(b, "\n");
    }
    lines_free(&ls);
    return st;
}

static lm_status render(lm_model *m, const table *t, int cols, sbuf *b) {
    static const double seq_pos[] = {0.45, 0.80, 1.0}, graph_pos[] = {0.3, 0.56, 0.74, 1.0};
    static const char *const header[] = {"Layer (type)", "Output Shape", "Param #", "Connected to"};
    const int just[] = {J_LEFT, J_LEFT, J_RIGHT, J_LEFT};
    int n = t->ncols, dflt = n == 3 ? 88 : 108, w[MAX_COLS];
    int line_length = dflt < cols - 4 ? dflt : cols - 4;
    if (column_widths(line_length, n == 3 ? seq_pos : graph_pos, n, w))
        return lm_model_fail(m, LM_ERR_ARG,
                             "summary: insufficient console width to print summary (%d columns)",
                             cols);
    char line[1200];
    snprintf(line, sizeof line, "Model: \"%s\"", m->name);
    lm_status st = print_line(b, line, cols);
    rule(b, &box_top, w, n);
    if (!st) st = draw_row(b, header, w, just, n, bar_head, true);
    rule(b, &box_head, w, n);
    for (int r = 0; r < t->n_rows && !st; r++) {
        if (r) rule(b, &box_row, w, n);
        st = draw_row(b, (const char *const *)t->rows[r], w, just, n, bar_body, false);
    }
    rule(b, &box_bottom, w, n);

    /* Totals: weights are float32; optimizer variables count once built. */
    int nw = lm_model_weights(m, NULL, 0);
    lm_weight **ws = malloc((size_t)(nw ? nw : 1) * sizeof *ws);
    if (!ws) return LM_ERR_OOM;
    lm_model_weights(m, ws, nw);
    int64_t trainable = 0, frozen = 0, opt = 0;
    for (int i = 0; i < nw; i++)
        *(ws[i]->trainable ? &trainable : &frozen) += lm_tensor_numel(ws[i]->value);
    free(ws);
    lm_optimizer *o = m->train && m->train->compiled ? m->train->opt : NULL;
    bool opt_built = o && o->offsets;
    /* iteration (int32 under JAX) and the learning rate unless scheduled, then the slots */
    if (opt_built) opt = 1 + (o->schedule ? 0 : 1) + (int64_t)o->n_slots * o->n_params;
    const char *labels[] = {
        " Total params: ", " Trainable params: ", " Non-trainable params: ", " Optimizer params: "};
    int64_t counts[] = {trainable + frozen + opt, trainable, frozen, opt};
    for (int i = 0; i < (opt_built ? 4 : 3) && !st; i++) {
        char num[48], size[48];
        commas(counts[i], num, sizeof num);
        readable_size((double)counts[i] * 4.0, size, sizeof size);
        snprintf(line, sizeof line, "%s%s (%s)", labels[i], num, size);
        st = print_line(b, line, cols);
    }
    return st;
}

lm_status lm_summary(lm_model *m, FILE *f) {
    if (!m) return LM_ERR_ARG;
    if (!f) return lm_model_fail(m, LM_ERR_ARG, "summary: the output stream is NULL");
    graph_info g;
    bool graph = !m->sequential;
    if (graph && !m->built)
        return lm_model_fail(m, LM_ERR_STATE,
                             "summary: %s has no outputs yet (call lm_model_set_outputs)", m->name);
    if (graph && graph_build(m, &g)) return lm_model_fail(m, LM_ERR_OOM, "out of memory");
    table t = {.ncols = graph && !sequential_like(m, &g) ? 4 : 3};
    lm_status st = LM_OK;
    if (graph)
        for (int i = 0; i < g.n_order && !st; i++) st = layer_row(m, &g, g.order[i], &t);
    else
        for (int i = 0; i < m->n_layers && !st; i++) st = layer_row(m, NULL, i, &t);
    sbuf b = {0};
    if (!st) st = render(m, &t, terminal_columns(), &b);
    if (!st && b.oom) st = LM_ERR_OOM;
    if (!st && b.s) {
        fwrite(b.s, 1, b.n, f);
        fflush(f);
    }
    if (st == LM_ERR_OOM) lm_model_fail(m, st, "summary: out of memory");
    free(b.s);
    table_free(&t);
    if (graph) graph_free(&g);
    return st;
}
