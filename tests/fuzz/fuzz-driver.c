/* main() for the fuzz targets without libFuzzer:
 *   fuzz-TARGET [--iterations N] [--seed S] [FILE...]
 *   fuzz-TARGET --write-seeds DIR      (a starting corpus for libFuzzer)
 * runs every FILE and every built-in seed once, then N mutations of them
 * (bit flips, interesting bytes and integers, cut, repeated and inserted
 * ranges, deep JSON nesting inserted or wrapped around the input), the
 * same ones for the same S. A crash or sanitizer report is the
 * failure, and so is a corpus of which no seed parses (the mutations would
 * never get past the first check); the exit status is 0 otherwise. */
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

static const guint8 interesting_bytes[] = {
  0x00, 0x01, 0x7f, 0x80, 0xff, '"', '\\', '{', '}', '[', ']', ',', ':', '<', '>',
  '_', '0', '9', '-', '.', 'e', 'K', 'q', '(', ')', 0x8a, 0x4b,
};
static const guint64 interesting_ints[] = {
  0, 1, 8, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff,
  G_GUINT64_CONSTANT (0x7fffffffffffffff), G_MAXUINT64,
};

/* Deep nesting: a run of opening brackets (or objects) inserted at @pos,
 * or the whole input wrapped in as many levels; the parsers must refuse
 * it before a recursive parser runs out of stack. */
static void
nest (GByteArray *b, GRand *r, guint pos)
{
  static const guint depths[] = { 63, 65, 1000 };
  /* past what overflows a recursive parser's 8 MiB stack, rarely: every
   * target then walks a large input */
  guint depth = g_rand_int_range (r, 0, 64) == 0 ? 100000
      : depths[g_rand_int_range (r, 0, G_N_ELEMENTS (depths))];
  gboolean objects = g_rand_boolean (r);
  const char *open = objects ? "{\"a\":" : "[";
  const char *close = objects ? "}" : "]";
  GByteArray *run = g_byte_array_new ();

  for (guint i = 0; i < depth; i++)
    g_byte_array_append (run, (const guint8 *) open, strlen (open));
  if (g_rand_boolean (r)) {
    g_array_insert_vals ((GArray *) b, pos, run->data, run->len);
  } else {
    g_byte_array_prepend (b, run->data, run->len);
    for (guint i = 0; i < depth; i++)
      g_byte_array_append (b, (const guint8 *) close, 1);
  }
  g_byte_array_unref (run);
}

static void
mutate (GByteArray *b, GRand *r)
{
  guint n = g_rand_int_range (r, 1, 5);

  for (guint m = 0; m < n; m++) {
    guint len = b->len;
    guint pos = len ? g_rand_int_range (r, 0, len) : 0;
    switch (g_rand_int_range (r, 0, 8)) {
      case 0:                   /* flip a bit */
        if (len)
          b->data[pos] ^= 1u << g_rand_int_range (r, 0, 8);
        break;
      case 1:                   /* an interesting byte */
        if (len)
          b->data[pos] = interesting_bytes[g_rand_int_range (r, 0,
                  G_N_ELEMENTS (interesting_bytes))];
        break;
      case 2:{                  /* an interesting integer, 1..8 bytes */
        guint64 v = interesting_ints[g_rand_int_range (r, 0, G_N_ELEMENTS (interesting_ints))];
        guint w = g_rand_int_range (r, 1, 9);
        for (guint i = 0; i < w && pos + i < len; i++)
          b->data[pos + i] = (guint8) (v >> (8 * i));
        break;
      }
      case 3:                   /* cut the tail */
        g_byte_array_set_size (b, pos);
        break;
      case 4:{                  /* remove a range */
        guint cut = len ? g_rand_int_range (r, 1, MIN (len - pos, 64) + 1) : 0;
        if (cut)
          g_byte_array_remove_range (b, pos, cut);
        break;
      }
      case 5:{                  /* repeat a range */
        guint rep = len ? g_rand_int_range (r, 1, MIN (len - pos, 64) + 1) : 0;
        if (rep && len < (1u << 24)) {
          guint8 *copy = g_memdup2 (b->data + pos, rep);
          g_array_insert_vals ((GArray *) b, pos, copy, rep);
          g_free (copy);
        }
        break;
      }
      case 6:                   /* deep nesting */
        if (len < (1u << 24))
          nest (b, r, pos);
        break;
      default:{                 /* insert random bytes */
        guint8 junk[16];
        guint k = g_rand_int_range (r, 1, sizeof junk + 1);
        for (guint i = 0; i < k; i++)
          junk[i] = (guint8) g_rand_int (r);
        g_array_insert_vals ((GArray *) b, pos, junk, k);
        break;
      }
    }
  }
}

static int
write_seeds (GPtrArray *seeds, const char *dir)
{
  GError *error = NULL;

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_printerr ("cannot create %s\n", dir);
    return 1;
  }
  for (guint i = 0; i < seeds->len; i++) {
    gsize len;
    const char *data = g_bytes_get_data (seeds->pdata[i], &len);
    char *name = g_strdup_printf ("seed-%03u", i);
    char *path = g_build_filename (dir, name, NULL);
    gboolean ok = g_file_set_contents (path, data, (gssize) len, &error);
    g_free (path);
    g_free (name);
    if (!ok) {
      g_printerr ("%s\n", error->message);
      g_error_free (error);
      return 1;
    }
  }
  printf ("%u seeds written to %s\n", seeds->len, dir);
  return 0;
}

int
main (int argc, char **argv)
{
  gint iterations = 0, seed = 1;
  char *seed_dir = NULL;
  GOptionEntry entries[] = {
    { "iterations", 'n', 0, G_OPTION_ARG_INT, &iterations, "Mutated inputs to run (default 0)", "N" },
    { "seed", 's', 0, G_OPTION_ARG_INT, &seed, "Random seed (default 1)", "S" },
    { "write-seeds", 'w', 0, G_OPTION_ARG_FILENAME, &seed_dir,
      "Write the built-in seeds into DIR (a libFuzzer corpus) and exit", "DIR" },
    { NULL }
  };
  GOptionContext *context = g_option_context_new ("[FILE...] - run a fuzz target");
  GPtrArray *seeds = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  GError *error = NULL;
  GRand *rand;
  guint seeds_accepted;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    g_error_free (error);
    g_option_context_free (context);
    return 2;
  }
  g_option_context_free (context);
  for (int i = 1; i < argc; i++) {
    char *data;
    gsize len;
    if (!g_file_get_contents (argv[i], &data, &len, &error)) {
      g_printerr ("%s\n", error->message);
      g_error_free (error);
      return 2;
    }
    g_ptr_array_add (seeds, g_bytes_new_take (data, len));
  }
  fuzz_add_seeds (seeds);
  if (seed_dir != NULL)
    return write_seeds (seeds, seed_dir);
  if (seeds->len == 0) {
    g_printerr ("no seed inputs: give files\n");
    return 2;
  }

  for (guint i = 0; i < seeds->len; i++) {
    gsize len;
    const guint8 *data = g_bytes_get_data (seeds->pdata[i], &len);
    LLVMFuzzerTestOneInput (data, len);
  }
  seeds_accepted = fuzz_accepted;
  if (seeds_accepted == 0) {
    g_printerr ("none of the %u seeds was accepted: fix the seeds\n", seeds->len);
    return 1;
  }
  rand = g_rand_new_with_seed ((guint32) seed);
  for (gint i = 0; i < iterations; i++) {
    GBytes *from = seeds->pdata[g_rand_int_range (rand, 0, seeds->len)];
    GByteArray *b = g_byte_array_new ();
    gsize len;
    const guint8 *data = g_bytes_get_data (from, &len);
    g_byte_array_append (b, data, len);
    mutate (b, rand);
    LLVMFuzzerTestOneInput (b->data, b->len);
    g_byte_array_unref (b);
  }
  printf ("%u seeds (%u accepted) and %d mutations (%u accepted) ran\n", seeds->len,
      seeds_accepted, iterations, fuzz_accepted - seeds_accepted);
  g_rand_free (rand);
  g_ptr_array_unref (seeds);
  return 0;
}
