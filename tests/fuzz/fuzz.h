/* Fuzz targets for the parsers of untrusted input (checkpoints, configs,
 * generated text, prompts, tokenizer input).
 *
 * Each target is one file that defines LLVMFuzzerTestOneInput(), so it
 * links unchanged into libFuzzer (meson -Dfuzzing=enabled with clang), and
 * fuzz_add_seeds(), the valid inputs a mutation run starts from. Without
 * libFuzzer, fuzz-driver.c supplies main(): it replays files and runs a
 * fixed number of deterministic mutations, which is what `meson test
 * --suite fuzz` does. A target must return 0 for any input and never crash,
 * abort, leak or read out of bounds. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Append seed inputs (GBytes) to @seeds. */
void fuzz_add_seeds (GPtrArray *seeds);

/* Write @data to a file in this process's scratch directory and return its
 * path (owned by the harness, valid until the next call with that name). */
const char *fuzz_scratch_file (const char *name, const uint8_t *data, size_t size);

/* Inputs the parser accepted; targets count them so that a run shows
 * whether its seeds reach past the first checks. */
extern guint fuzz_accepted;

/* Adds one seed per task and text: the task's number as the first byte,
 * then the text (the layout of the targets that take a task and a text). */
void fuzz_add_task_seeds (GPtrArray *seeds, const char *const *texts, guint n_texts);

/* Reads the first and last byte of a parsed tensor, so that data a parser
 * let reach past the mapped file is a memory error; returns their sum. */
guint fuzz_touch (const void *data, guint64 nbytes);

/* A NUL-terminated copy of @data (g_free() it). */
char *fuzz_string (const uint8_t *data, size_t size);
