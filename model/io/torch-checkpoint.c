/* Restricted reader for PyTorch zip checkpoints: a pickle interpreter that
 * only builds data (dicts, tuples, ints, strings, tensor descriptions) and
 * refuses every opcode and global a plain state dict does not use. */
#include "torch-checkpoint.h"
#include "zip-archive.h"
#include "loader-util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SAFE_FIX "load it with PyTorch only if you trust its origin, " \
  "or use the model's model.safetensors instead"

/* ---------------------------------------------------------------- values */

typedef enum {
  V_NONE,
  V_BOOL,
  V_INT,
  V_STR,
  V_TUPLE,
  V_LIST,
  V_DICT,                       /* items: key, value, key, value... */
  V_GLOBAL,
  V_STORAGE,
  V_TENSOR,
} ValueKind;

typedef enum {
  GLOBAL_ORDERED_DICT,
  GLOBAL_REBUILD_TENSOR,
  GLOBAL_REBUILD_PARAMETER,
  GLOBAL_HALF_STORAGE,
  GLOBAL_FLOAT_STORAGE,
  GLOBAL_BF16_STORAGE,
} GlobalId;

static const struct {
  const char *module, *name;
} allowed_globals[] = {
  [GLOBAL_ORDERED_DICT] = {"collections", "OrderedDict"},
  [GLOBAL_REBUILD_TENSOR] = {"torch._utils", "_rebuild_tensor_v2"},
  [GLOBAL_REBUILD_PARAMETER] = {"torch._utils", "_rebuild_parameter"},
  [GLOBAL_HALF_STORAGE] = {"torch", "HalfStorage"},
  [GLOBAL_FLOAT_STORAGE] = {"torch", "FloatStorage"},
  [GLOBAL_BF16_STORAGE] = {"torch", "BFloat16Storage"},
};

typedef struct _Value Value;
struct _Value {
  ValueKind kind;
  gint64 i;                     /* int, bool, GlobalId; storage numel */
  char *s;                      /* str; storage key */
  GPtrArray *items;             /* tuple, list, dict */
  /* storage */
  F2DType dtype;
  /* tensor */
  Value *storage;
  guint64 offset;
  guint ndim;
  guint64 shape[F2_TENSOR_MAX_DIMS];
  gint64 stride[F2_TENSOR_MAX_DIMS];
};

static void
value_free (gpointer data)
{
  Value *v = data;
  g_free (v->s);
  if (v->items != NULL)
    g_ptr_array_unref (v->items);
  g_free (v);
}

/* ------------------------------------------------------------- unpickler */

typedef struct {
  const char *path;
  const guint8 *data;
  gsize size, pos;
  GPtrArray *stack;             /* Value* */
  GArray *marks;                /* guint: stack depth at each MARK */
  GHashTable *memo;             /* index -> Value* */
  GPtrArray *arena;             /* every Value, freed together */
  GError **error;
} Unpickler;

static gboolean
bad (Unpickler *u, gint code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
bad (Unpickler *u, gint code, const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (code == F2_CHECKPOINT_ERROR_CORRUPT)
    g_set_error (u->error, F2_CHECKPOINT_ERROR, code,
        "%s: the state-dict pickle is damaged (%s at byte %" G_GSIZE_FORMAT
        "); re-download the file", u->path, message, u->pos);
  else
    g_set_error (u->error, F2_CHECKPOINT_ERROR, code,
        "%s: refused to load the state-dict pickle: %s (byte %" G_GSIZE_FORMAT
        "); " SAFE_FIX, u->path, message, u->pos);
  g_free (message);
  return FALSE;
}

static Value *
new_value (Unpickler *u, ValueKind kind)
{
  Value *v = g_new0 (Value, 1);
  v->kind = kind;
  if (kind == V_TUPLE || kind == V_LIST || kind == V_DICT)
    v->items = g_ptr_array_new ();
  g_ptr_array_add (u->arena, v);
  return v;
}

static void
push (Unpickler *u, Value *v)
{
  g_ptr_array_add (u->stack, v);
}

static guint
mark_depth (Unpickler *u)
{
  return u->marks->len ? g_array_index (u->marks, guint, u->marks->len - 1) : 0;
}

static Value *
pop (Unpickler *u)
{
  /* values under the latest MARK are not reachable by plain pops */
  if (u->stack->len <= mark_depth (u) || u->stack->len == 0) {
    bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "stack underflow");
    return NULL;
  }
  return g_ptr_array_steal_index (u->stack, u->stack->len - 1);
}

static Value *
top (Unpickler *u)
{
  if (u->stack->len <= mark_depth (u) || u->stack->len == 0) {
    bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "stack underflow");
    return NULL;
  }
  return g_ptr_array_index (u->stack, u->stack->len - 1);
}

/* Move the values above the latest MARK into @into (in order) and drop the
 * mark. */
static gboolean
pop_to_mark (Unpickler *u, GPtrArray *into)
{
  guint depth;

  if (u->marks->len == 0)
    return bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "no MARK");
  depth = g_array_index (u->marks, guint, u->marks->len - 1);
  g_array_set_size (u->marks, u->marks->len - 1);
  for (guint i = depth; i < u->stack->len; i++)
    g_ptr_array_add (into, g_ptr_array_index (u->stack, i));
  g_ptr_array_set_size (u->stack, depth);
  return TRUE;
}

static const guint8 *
take (Unpickler *u, gsize n)
{
  const guint8 *p;

  if (n > u->size - u->pos) {
    bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "unexpected end");
    return NULL;
  }
  p = u->data + u->pos;
  u->pos += n;
  return p;
}

static gboolean
take_uint (Unpickler *u, guint n, guint64 *value)
{
  const guint8 *p = take (u, n);

  if (p == NULL)
    return FALSE;
  *value = 0;
  for (guint i = n; i-- > 0;)
    *value = (*value << 8) | p[i];
  return TRUE;
}

static gboolean
push_string (Unpickler *u, guint len_bytes)
{
  guint64 len;
  const guint8 *p;
  Value *v;

  if (!take_uint (u, len_bytes, &len) || (p = take (u, len)) == NULL)
    return FALSE;
  if (!g_utf8_validate_len ((const char *) p, len, NULL))
    return bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "invalid UTF-8 string");
  v = new_value (u, V_STR);
  v->s = g_strndup ((const char *) p, len);
  push (u, v);
  return TRUE;
}

static gboolean
push_int (Unpickler *u, gint64 i)
{
  Value *v = new_value (u, V_INT);
  v->i = i;
  push (u, v);
  return TRUE;
}

/* A newline-terminated line of GLOBAL's argument. */
static char *
take_line (Unpickler *u)
{
  const guint8 *start = u->data + u->pos;
  const guint8 *nl = memchr (start, '\n', MIN (u->size - u->pos, 256));

  if (nl == NULL) {
    bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "unterminated GLOBAL");
    return NULL;
  }
  u->pos += nl - start + 1;
  return g_strndup ((const char *) start, nl - start);
}

static gboolean
push_global (Unpickler *u, const char *module, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (allowed_globals); i++) {
    if (g_str_equal (module, allowed_globals[i].module)
        && g_str_equal (name, allowed_globals[i].name)) {
      Value *v = new_value (u, V_GLOBAL);
      v->i = i;
      push (u, v);
      return TRUE;
    }
  }
  return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
      "it references the global '%s.%s', which is not part of a plain "
      "state dict of tensors and could run code", module, name);
}

static gboolean
is_int (const Value *v)
{
  return v->kind == V_INT || v->kind == V_BOOL;
}

/* ('storage', storage_type, key, location, numel) */
static gboolean
persistent_load (Unpickler *u, Value *pid)
{
  Value *v, **f;

  if (pid->kind != V_TUPLE || pid->items->len != 5)
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "a persistent id that is not a 5-tuple ('storage', type, key, "
        "location, size)");
  f = (Value **) pid->items->pdata;
  if (f[0]->kind != V_STR || !g_str_equal (f[0]->s, "storage"))
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "a persistent id that is not a storage");
  if (f[1]->kind != V_GLOBAL || f[1]->i < GLOBAL_HALF_STORAGE)
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "a storage whose type is not HalfStorage, FloatStorage or "
        "BFloat16Storage");
  if (f[2]->kind != V_STR || f[3]->kind != V_STR || !is_int (f[4]) || f[4]->i < 0)
    return bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "malformed storage reference");
  v = new_value (u, V_STORAGE);
  v->dtype = f[1]->i == GLOBAL_HALF_STORAGE ? F2_DTYPE_F16
      : f[1]->i == GLOBAL_FLOAT_STORAGE ? F2_DTYPE_F32 : F2_DTYPE_BF16;
  v->s = g_strdup (f[2]->s);
  v->i = f[4]->i;
  push (u, v);
  return TRUE;
}

static gboolean
is_empty_mapping (const Value *v)
{
  return v->kind == V_NONE || (v->kind == V_DICT && v->items->len == 0);
}

static gboolean
int_tuple (const Value *v, guint64 *out, gint64 *sout, guint *n)
{
  if (v->kind != V_TUPLE || v->items->len > F2_TENSOR_MAX_DIMS)
    return FALSE;
  for (guint i = 0; i < v->items->len; i++) {
    const Value *e = g_ptr_array_index (v->items, i);
    if (!is_int (e) || e->i < 0)
      return FALSE;
    if (out)
      out[i] = (guint64) e->i;
    if (sout)
      sout[i] = e->i;
  }
  *n = v->items->len;
  return TRUE;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) */
static gboolean
rebuild_tensor (Unpickler *u, Value *args)
{
  Value **a = (Value **) args->items->pdata;
  Value *t;
  guint n_shape, n_stride;

  if (args->items->len < 6 || args->items->len > 7)
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "_rebuild_tensor_v2 called with %u arguments", args->items->len);
  t = new_value (u, V_TENSOR);
  if (a[0]->kind != V_STORAGE || !is_int (a[1]) || a[1]->i < 0
      || !int_tuple (a[2], t->shape, NULL, &n_shape)
      || !int_tuple (a[3], NULL, t->stride, &n_stride) || n_shape != n_stride
      || !is_int (a[4]))
    return bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "malformed tensor");
  if (!is_empty_mapping (a[5]) || (args->items->len == 7 && !is_empty_mapping (a[6])))
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "a tensor with backward hooks or metadata");
  t->storage = a[0];
  t->offset = (guint64) a[1]->i;
  t->ndim = n_shape;
  push (u, t);
  return TRUE;
}

static gboolean
reduce (Unpickler *u)
{
  Value *args = pop (u), *callable;

  if (args == NULL || (callable = pop (u)) == NULL)
    return FALSE;
  if (callable->kind != V_GLOBAL || args->kind != V_TUPLE)
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "REDUCE applied to something other than an allowed global");
  switch ((GlobalId) callable->i) {
    case GLOBAL_ORDERED_DICT:
      if (args->items->len != 0)
        return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
            "OrderedDict built from arguments");
      push (u, new_value (u, V_DICT));
      return TRUE;
    case GLOBAL_REBUILD_TENSOR:
      return rebuild_tensor (u, args);
    case GLOBAL_REBUILD_PARAMETER:
      /* _rebuild_parameter(data, requires_grad, backward_hooks) */
      if (args->items->len != 3
          || ((Value *) g_ptr_array_index (args->items, 0))->kind != V_TENSOR
          || !is_empty_mapping (g_ptr_array_index (args->items, 2)))
        return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
            "_rebuild_parameter with unexpected arguments");
      push (u, g_ptr_array_index (args->items, 0));
      return TRUE;
    default:
      return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
          "a storage type called as a function");
  }
}

static gboolean
set_items (Unpickler *u, Value *dict, GPtrArray *pairs)
{
  if (dict->kind != V_DICT || pairs->len % 2 != 0)
    return bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "SETITEM(S) on something that is not a dict");
  for (guint i = 0; i < pairs->len; i++)
    g_ptr_array_add (dict->items, g_ptr_array_index (pairs, i));
  return TRUE;
}

static gboolean
memo_put (Unpickler *u, guint64 index)
{
  Value *v = top (u);

  if (v == NULL)
    return FALSE;
  g_hash_table_insert (u->memo, GUINT_TO_POINTER ((guint) index), v);
  return TRUE;
}

static gboolean
memo_get (Unpickler *u, guint64 index)
{
  Value *v = g_hash_table_lookup (u->memo, GUINT_TO_POINTER ((guint) index));

  if (v == NULL)
    return bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "memo %" G_GUINT64_FORMAT
        " read before it was written", index);
  push (u, v);
  return TRUE;
}

static const char *
opcode_name (guint8 op)
{
  static const struct {
    guint8 op;
    const char *name;
  } names[] = {
    {'i', "INST"}, {'o', "OBJ"}, {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"},
    {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"}, {'P', "PERSID"},
    {'S', "STRING"}, {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"},
    {'V', "UNICODE"}, {'F', "FLOAT"}, {'G', "BINFLOAT"}, {'I', "INT"},
    {'L', "LONG"}, {0x8b, "LONG4"}, {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"},
    {0x8e, "BINBYTES8"}, {0x8d, "BINUNICODE8"}, {0x96, "BYTEARRAY8"},
    {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}, {'d', "DICT"},
    {'l', "LIST"}, {'g', "GET"}, {'p', "PUT"}, {'0', "POP"}, {'2', "DUP"},
    {'1', "POP_MARK"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"},
    {0x8f, "EMPTY_SET"}, {'b', "BUILD"}, {'R', "REDUCE"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (names[i].op == op)
      return names[i].name;
  return "unknown";
}

/* Run the pickle; on success the result is returned (owned by the arena). */
static Value *
unpickle (Unpickler *u)
{
  GPtrArray *tmp = g_ptr_array_new ();
  Value *result = NULL;

  while (result == NULL) {
    const guint8 *opp = take (u, 1);
    guint8 op;
    guint64 n;
    Value *a, *b, *v;
    gboolean ok = TRUE;

    if (opp == NULL)
      break;
    op = *opp;
    g_ptr_array_set_size (tmp, 0);
    switch (op) {
      case 0x80:               /* PROTO */
        ok = take_uint (u, 1, &n);
        if (ok && (n < 2 || n > 5))
          ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
              "pickle protocol %" G_GUINT64_FORMAT, n);
        break;
      case 0x95:               /* FRAME: a size hint */
        ok = take_uint (u, 8, &n);
        break;
      case '}':                /* EMPTY_DICT */
        push (u, new_value (u, V_DICT));
        break;
      case ']':                /* EMPTY_LIST */
        push (u, new_value (u, V_LIST));
        break;
      case ')':                /* EMPTY_TUPLE */
        push (u, new_value (u, V_TUPLE));
        break;
      case '(':                /* MARK */
        g_array_append_val (u->marks, u->stack->len);
        break;
      case 'X':                /* BINUNICODE */
        ok = push_string (u, 4);
        break;
      case 0x8c:               /* SHORT_BINUNICODE */
        ok = push_string (u, 1);
        break;
      case 'q':                /* BINPUT */
        ok = take_uint (u, 1, &n) && memo_put (u, n);
        break;
      case 'r':                /* LONG_BINPUT */
        ok = take_uint (u, 4, &n) && memo_put (u, n);
        break;
      case 0x94:               /* MEMOIZE */
        ok = memo_put (u, g_hash_table_size (u->memo));
        break;
      case 'h':                /* BINGET */
        ok = take_uint (u, 1, &n) && memo_get (u, n);
        break;
      case 'j':                /* LONG_BINGET */
        ok = take_uint (u, 4, &n) && memo_get (u, n);
        break;
      case 'c':{               /* GLOBAL */
        char *module = take_line (u), *name = module ? take_line (u) : NULL;
        ok = name != NULL && push_global (u, module, name);
        g_free (module);
        g_free (name);
        break;
      }
      case 0x93:               /* STACK_GLOBAL */
        ok = (b = pop (u)) != NULL && (a = pop (u)) != NULL;
        if (ok && (a->kind != V_STR || b->kind != V_STR))
          ok = bad (u, F2_CHECKPOINT_ERROR_CORRUPT, "STACK_GLOBAL without names");
        if (ok)
          ok = push_global (u, a->s, b->s);
        break;
      case 'Q':                /* BINPERSID */
        ok = (a = pop (u)) != NULL && persistent_load (u, a);
        break;
      case 't':                /* TUPLE */
        v = new_value (u, V_TUPLE);
        ok = pop_to_mark (u, v->items);
        push (u, v);
        break;
      case 0x85:               /* TUPLE1 */
      case 0x86:               /* TUPLE2 */
      case 0x87:               /* TUPLE3 */
        v = new_value (u, V_TUPLE);
        for (guint i = 0; i < (guint) (op - 0x84) && ok; i++)
          ok = (a = pop (u)) != NULL && (g_ptr_array_insert (v->items, 0, a), TRUE);
        push (u, v);
        break;
      case 'J':                /* BININT */
        ok = take_uint (u, 4, &n) && push_int (u, (gint32) (guint32) n);
        break;
      case 'K':                /* BININT1 */
        ok = take_uint (u, 1, &n) && push_int (u, (gint64) n);
        break;
      case 'M':                /* BININT2 */
        ok = take_uint (u, 2, &n) && push_int (u, (gint64) n);
        break;
      case 0x8a:{              /* LONG1: little-endian two's complement */
        guint64 len;
        ok = take_uint (u, 1, &len);
        if (ok && len > 8)
          ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED, "integer wider than 64 bits");
        if (ok && len == 0)
          ok = push_int (u, 0);
        else if (ok && take_uint (u, len, &n)) {
          if (len < 8 && (n >> (8 * len - 1)) & 1)
            n |= ~(guint64) 0 << (8 * len);     /* sign-extend */
          ok = push_int (u, (gint64) n);
        } else
          ok = FALSE;
        break;
      }
      case 0x88:               /* NEWTRUE */
      case 0x89:               /* NEWFALSE */
        v = new_value (u, V_BOOL);
        v->i = op == 0x88;
        push (u, v);
        break;
      case 'N':                /* NONE */
        push (u, new_value (u, V_NONE));
        break;
      case 'R':                /* REDUCE */
        ok = reduce (u);
        break;
      case 's':                /* SETITEM */
        ok = (b = pop (u)) != NULL && (a = pop (u)) != NULL && (v = top (u)) != NULL;
        if (ok) {
          g_ptr_array_add (tmp, a);
          g_ptr_array_add (tmp, b);
          ok = set_items (u, v, tmp);
        }
        break;
      case 'u':                /* SETITEMS */
        ok = pop_to_mark (u, tmp) && (v = top (u)) != NULL && set_items (u, v, tmp);
        break;
      case 'a':                /* APPEND */
        ok = (a = pop (u)) != NULL && (v = top (u)) != NULL;
        if (ok && v->kind != V_LIST)
          ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED, "APPEND to a non-list");
        if (ok)
          g_ptr_array_add (v->items, a);
        break;
      case 'e':                /* APPENDS */
        ok = pop_to_mark (u, tmp) && (v = top (u)) != NULL;
        if (ok && v->kind != V_LIST)
          ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED, "APPENDS to a non-list");
        for (guint i = 0; ok && i < tmp->len; i++)
          g_ptr_array_add (v->items, g_ptr_array_index (tmp, i));
        break;
      case 'b':                /* BUILD: only a state dict's _metadata */
        ok = (a = pop (u)) != NULL && (v = top (u)) != NULL;
        if (ok && (v->kind != V_DICT || (a->kind != V_DICT && a->kind != V_NONE)))
          ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
              "opcode BUILD on an object that is not an OrderedDict");
        break;
      case '.':                /* STOP */
        ok = (result = pop (u)) != NULL;
        break;
      default:
        ok = bad (u, F2_CHECKPOINT_ERROR_UNSUPPORTED,
            "opcode %s (0x%02x) is not used by a plain state dict",
            opcode_name (op), op);
        break;
    }
    if (!ok) {
      result = NULL;
      break;
    }
  }
  g_ptr_array_unref (tmp);
  return result;
}

/* ------------------------------------------------------------ checkpoint */

struct _F2TorchCheckpoint {
  char *path;
  F2ZipArchive *zip;
  GArray *tensors;              /* F2Tensor */
  GPtrArray *names;
  GHashTable *by_name;          /* name -> index + 1 */
};

/* The archive's folder: the one holding data.pkl (torch names it after the
 * file, so it varies). */
static char *
find_prefix (F2TorchCheckpoint *ckpt, GError **error)
{
  char *prefix = NULL;

  for (guint i = 0; i < f2_zip_archive_n_entries (ckpt->zip); i++) {
    const char *name = f2_zip_archive_entry_name (ckpt->zip, i);
    const char *slash = strchr (name, '/');
    if (slash != NULL && g_str_equal (slash + 1, "data.pkl")) {
      if (prefix != NULL) {
        g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
            "%s holds several data.pkl files; it is not a single PyTorch "
            "checkpoint", ckpt->path);
        g_free (prefix);
        return NULL;
      }
      prefix = g_strndup (name, slash + 1 - name);
    }
  }
  if (prefix == NULL)
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s is a zip archive without <folder>/data.pkl; it is not a PyTorch "
        "checkpoint: re-download it", ckpt->path);
  return prefix;
}

static gboolean
add_tensor (F2TorchCheckpoint *ckpt, const char *prefix, const char *name,
    const Value *t, GError **error)
{
  F2Tensor out = { 0 };
  const Value *s = t->storage;
  guint esize = f2_dtype_size (s->dtype);
  guint64 expected = 1, end, storage_bytes;
  const guint8 *bytes;
  guint64 size;
  char *entry;
  gboolean ok;

  out.dtype = s->dtype;
  out.ndim = t->ndim;
  out.numel = 1;
  for (guint i = t->ndim; i-- > 0;) {
    out.shape[i] = t->shape[i];
    if (t->shape[i] > 1 && t->stride[i] != (gint64) expected) {
      g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
          "%s: tensor '%s' is not contiguous (a transposed view was saved); "
          "re-save the state dict after .contiguous() or use model.safetensors",
          ckpt->path, name);
      return FALSE;
    }
    if (!g_uint64_checked_mul (&expected, expected, MAX (t->shape[i], 1))
        || !g_uint64_checked_mul (&out.numel, out.numel, t->shape[i]))
      goto corrupt;
  }
  if (!g_uint64_checked_add (&end, t->offset, out.numel)
      || (out.numel > 0 && end > (guint64) s->i)
      || !g_uint64_checked_mul (&storage_bytes, (guint64) s->i, esize))
    goto corrupt;

  entry = g_strconcat (prefix, "data/", s->s, NULL);
  ok = f2_zip_archive_get (ckpt->zip, entry, &bytes, &size, error);
  g_free (entry);
  if (!ok)
    return FALSE;
  if (size < storage_bytes) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the storage of tensor '%s' holds %" G_GUINT64_FORMAT " bytes, "
        "%" G_GUINT64_FORMAT " expected; the file is damaged: re-download it",
        ckpt->path, name, size, storage_bytes);
    return FALSE;
  }
  if (g_hash_table_contains (ckpt->by_name, name)) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: tensor '%s' appears twice; the file is damaged: re-download it",
        ckpt->path, name);
    return FALSE;
  }
  out.data = bytes + t->offset * esize;
  out.nbytes = out.numel * esize;
  g_ptr_array_add (ckpt->names, g_strdup (name));
  out.name = g_ptr_array_index (ckpt->names, ckpt->names->len - 1);
  g_array_append_val (ckpt->tensors, out);
  g_hash_table_insert (ckpt->by_name, (gpointer) out.name,
      GUINT_TO_POINTER (ckpt->tensors->len));
  return TRUE;

corrupt:
  g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
      "%s: tensor '%s' lies outside its storage; the file is damaged: "
      "re-download it", ckpt->path, name);
  return FALSE;
}

static gboolean
load_state_dict (F2TorchCheckpoint *ckpt, GError **error)
{
  Unpickler u = { 0 };
  char *prefix, *entry;
  const guint8 *pkl, *order;
  guint64 pkl_size, order_size;
  Value *root;
  gboolean ok = FALSE;

  prefix = find_prefix (ckpt, error);
  if (prefix == NULL)
    return FALSE;
  entry = g_strconcat (prefix, "byteorder", NULL);
  if (f2_zip_archive_get (ckpt->zip, entry, &order, &order_size, NULL)
      && !(order_size == 6 && memcmp (order, "little", 6) == 0)) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s was saved on a big-endian machine; convert it to "
        "model.safetensors", ckpt->path);
    g_free (entry);
    g_free (prefix);
    return FALSE;
  }
  g_free (entry);
  entry = g_strconcat (prefix, "data.pkl", NULL);
  ok = f2_zip_archive_get (ckpt->zip, entry, &pkl, &pkl_size, error);
  g_free (entry);
  if (!ok) {
    g_free (prefix);
    return FALSE;
  }
  ok = FALSE;

  u.path = ckpt->path;
  u.data = pkl;
  u.size = pkl_size;
  u.stack = g_ptr_array_new ();
  u.marks = g_array_new (FALSE, FALSE, sizeof (guint));
  u.memo = g_hash_table_new (g_direct_hash, g_direct_equal);
  u.arena = g_ptr_array_new_with_free_func (value_free);
  u.error = error;
  root = unpickle (&u);
  if (root == NULL)
    goto out;
  if (root->kind != V_DICT) {
    bad (&u, F2_CHECKPOINT_ERROR_UNSUPPORTED, "the pickle is not a dict "
        "(a whole model was saved instead of its state dict)");
    goto out;
  }
  for (guint i = 0; i + 1 < root->items->len; i += 2) {
    const Value *key = g_ptr_array_index (root->items, i);
    const Value *value = g_ptr_array_index (root->items, i + 1);
    if (key->kind != V_STR || value->kind != V_TENSOR) {
      bad (&u, F2_CHECKPOINT_ERROR_UNSUPPORTED, "state-dict entry %s is not "
          "a tensor", key->kind == V_STR ? key->s : "(no name)");
      goto out;
    }
    if (!add_tensor (ckpt, prefix, key->s, value, error))
      goto out;
  }
  ok = TRUE;

out:
  g_ptr_array_unref (u.stack);
  g_array_free (u.marks, TRUE);
  g_hash_table_unref (u.memo);
  g_ptr_array_unref (u.arena);
  g_free (prefix);
  return ok;
}

/* The first bytes tell a legacy (pre-1.6, not zip) checkpoint apart. */
static gboolean
check_not_legacy (const char *path, GError **error)
{
  guint8 magic[2] = { 0 };
  gssize n;
  /* a regular file only: a FIFO or a device would block or never end */
  int fd = f2_file_open_regular (path, F2_MAX_WEIGHTS_FILE_SIZE,
      "the model's checkpoint (pytorch_model.bin)", NULL, error);

  if (fd < 0)
    return FALSE;
  n = read (fd, magic, 2);
  close (fd);
  if (n == 2 && magic[0] == 0x80 && magic[1] <= 5) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s uses PyTorch's legacy (pre-1.6) format; re-save it with a recent "
        "PyTorch or convert it to model.safetensors", path);
    return FALSE;
  }
  return TRUE;
}

F2TorchCheckpoint *
f2_torch_checkpoint_open (const char *path, GError **error)
{
  F2TorchCheckpoint *ckpt;
  F2ZipArchive *zip;

  g_return_val_if_fail (path != NULL, NULL);
  if (!check_not_legacy (path, error))
    return NULL;
  zip = f2_zip_archive_open (path, error);
  if (zip == NULL)
    return NULL;
  ckpt = g_new0 (F2TorchCheckpoint, 1);
  ckpt->path = g_strdup (path);
  ckpt->zip = zip;
  ckpt->tensors = g_array_new (FALSE, FALSE, sizeof (F2Tensor));
  ckpt->names = g_ptr_array_new_with_free_func (g_free);
  ckpt->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  if (!load_state_dict (ckpt, error)) {
    f2_torch_checkpoint_close (ckpt);
    return NULL;
  }
  return ckpt;
}

void
f2_torch_checkpoint_close (F2TorchCheckpoint *ckpt)
{
  if (ckpt == NULL)
    return;
  g_hash_table_unref (ckpt->by_name);
  g_ptr_array_unref (ckpt->names);
  g_array_free (ckpt->tensors, TRUE);
  f2_zip_archive_free (ckpt->zip);
  g_free (ckpt->path);
  g_free (ckpt);
}

guint
f2_torch_checkpoint_n_tensors (F2TorchCheckpoint *ckpt)
{
  return ckpt->tensors->len;
}

const F2Tensor *
f2_torch_checkpoint_get_nth (F2TorchCheckpoint *ckpt, guint i)
{
  g_return_val_if_fail (i < ckpt->tensors->len, NULL);
  return &g_array_index (ckpt->tensors, F2Tensor, i);
}

const F2Tensor *
f2_torch_checkpoint_lookup (F2TorchCheckpoint *ckpt, const char *name)
{
  guint index = GPOINTER_TO_UINT (g_hash_table_lookup (ckpt->by_name, name));

  return index == 0 ? NULL : &g_array_index (ckpt->tensors, F2Tensor, index - 1);
}
