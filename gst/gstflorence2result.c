/* Results as metadata: see gstflorence2result.h. */
#include "gstflorence2result.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

GstFlorence2Meta *
gst_florence2_result_attach (GstBuffer * buffer, const F2Result * result,
    const gchar * task, const gchar * prompt, gint width, gint height,
    GstClockTime source_pts, GstClockTime inference_time)
{
  GstFlorence2Meta *meta;
  gdouble sx = 1.0, sy = 1.0;

  meta = gst_buffer_add_florence2_meta (buffer, task, prompt, result->text,
      width, height, source_pts, inference_time);
  if (meta == NULL)
    return NULL;
  if (result->image_width > 0 && result->image_height > 0) {
    sx = (gdouble) width / result->image_width;
    sy = (gdouble) height / result->image_height;
  }

  for (guint i = 0; i < result->n_regions; i++) {
    const F2Region *r = &result->regions[i];
    /* the model may give the corners in either order: the meta holds the
     * top-left corner and a positive size */
    gfloat x0 = MIN (r->bbox[0], r->bbox[2]), x1 = MAX (r->bbox[0], r->bbox[2]);
    gfloat y0 = MIN (r->bbox[1], r->bbox[3]), y1 = MAX (r->bbox[1], r->bbox[3]);
    guint k = gst_florence2_meta_add_region (meta, r->label, x0 * sx, y0 * sy,
        (x1 - x0) * sx, (y1 - y0) * sy);

    if (r->shape == F2_REGION_QUAD) {
      gfloat quad[8];

      for (guint j = 0; j < 4; j++) {
        quad[2 * j] = r->quad[2 * j] * sx;
        quad[2 * j + 1] = r->quad[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_set_quad (meta, k, quad);
    }
    for (guint p = 0; p < r->n_polygons; p++) {
      const F2Polygon *poly = &r->polygons[p];
      guint n_points = poly->n_coords / 2;
      gfloat *points = g_new (gfloat, 2 * (gsize) n_points + 1);

      for (guint j = 0; j < n_points; j++) {
        points[2 * j] = poly->coords[2 * j] * sx;
        points[2 * j + 1] = poly->coords[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_add_polygon (meta, k, n_points, points);
      g_free (points);
    }
  }
  return meta;
}

static void
value_array_append_double (GValue * array, gdouble d)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, d);
  gst_value_array_append_and_take_value (array, &v);
}

static void
set_double_array (GstStructure * s, const gchar * name, const gfloat * coords,
    guint n)
{
  GValue array = G_VALUE_INIT;

  gst_value_array_init (&array, n);
  for (guint i = 0; i < n; i++)
    value_array_append_double (&array, coords[i]);
  gst_structure_take_value (s, name, &array);
}

/* Round a box out to whole pixels inside the frame. */
static void
pixel_box (const GstFlorence2Region * r, gint width, gint height, guint * x,
    guint * y, guint * w, guint * h)
{
  gdouble x0 = CLAMP (floor (r->x), 0, MAX (width, 0));
  gdouble y0 = CLAMP (floor (r->y), 0, MAX (height, 0));
  gdouble x1 = CLAMP (ceil (r->x + r->w), x0, MAX (width, 0));
  gdouble y1 = CLAMP (ceil (r->y + r->h), y0, MAX (height, 0));

  *x = (guint) x0;
  *y = (guint) y0;
  *w = (guint) (x1 - x0);
  *h = (guint) (y1 - y0);
}

void
gst_florence2_result_attach_rois (GstBuffer * buffer,
    const GstFlorence2Meta * meta)
{
  gdouble fw = meta->width > 0 ? meta->width : 1;
  gdouble fh = meta->height > 0 ? meta->height : 1;

  for (guint i = 0; i < meta->n_regions; i++) {
    const GstFlorence2Region *r = &meta->regions[i];
    GstVideoRegionOfInterestMeta *roi;
    GstStructure *detection, *f2;
    guint x, y, w, h;

    pixel_box (r, meta->width, meta->height, &x, &y, &w, &h);
    /* DL Streamer names the ROI type after the label */
    roi = gst_buffer_add_video_region_of_interest_meta (buffer,
        r->label[0] ? r->label : "florence2", x, y, w, h);
    if (roi == NULL)
      continue;

    detection = gst_structure_new ("detection",
        "x_min", G_TYPE_DOUBLE, CLAMP (r->x / fw, 0.0, 1.0),
        "y_min", G_TYPE_DOUBLE, CLAMP (r->y / fh, 0.0, 1.0),
        "x_max", G_TYPE_DOUBLE, CLAMP ((r->x + r->w) / fw, 0.0, 1.0),
        "y_max", G_TYPE_DOUBLE, CLAMP ((r->y + r->h) / fh, 0.0, 1.0),
        "label", G_TYPE_STRING, r->label,
        "label_id", G_TYPE_UINT, r->label_id, NULL);
    gst_video_region_of_interest_meta_add_param (roi, detection);

    f2 = gst_structure_new ("florence2",
        "task", G_TYPE_STRING, meta->task,
        "phrase", G_TYPE_STRING, r->label,
        "source-pts", G_TYPE_UINT64, (guint64) meta->source_pts, NULL);
    if (r->n_polygons > 0)
      set_double_array (f2, "polygon", r->polygons[0].points,
          2 * r->polygons[0].n_points);
    if (r->has_quad)
      set_double_array (f2, "quad", r->quad, 8);
    gst_video_region_of_interest_meta_add_param (roi, f2);
  }
}

GstStructure *
gst_florence2_result_structure (const GstFlorence2Meta * meta,
    GstClockTime pts, const gchar * json)
{
  return gst_structure_new ("florence2-result",
      "task", G_TYPE_STRING, meta->task,
      "prompt", G_TYPE_STRING, meta->prompt,
      "text", G_TYPE_STRING, meta->text,
      "timestamp", G_TYPE_UINT64, (guint64) pts,
      "source-timestamp", G_TYPE_UINT64, (guint64) meta->source_pts,
      "inference-time", G_TYPE_UINT64, (guint64) meta->inference_time,
      "json", G_TYPE_STRING, json, NULL);
}

gchar *
gst_florence2_result_json (const GstFlorence2Meta * meta, GstClockTime pts,
    gint64 utc_us)
{
  gchar *json = gst_florence2_meta_to_json (meta, pts);
  GDateTime *utc;
  gchar *stamp, *led;

  /* the object always has members: the wall clock goes first */
  if (json == NULL || utc_us < 0 || json[0] != '{' || json[1] == '}')
    return json;
  utc = g_date_time_new_from_unix_utc (utc_us / G_USEC_PER_SEC);
  if (utc == NULL)
    return json;
  stamp = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S");
  led = g_strdup_printf ("{\"timestamp_utc\":\"%s.%06dZ\",%s", stamp,
      (gint) (utc_us % G_USEC_PER_SEC), json + 1);
  g_free (stamp);
  g_date_time_unref (utc);
  g_free (json);
  return led;
}

/* ------------------------------------------------------- results file */

struct _GstFlorence2ResultsFile
{
  gchar *path;
  GstFlorence2ResultsFormat format;
  guint64 records;              /* records written (JSON array) */
  gboolean finished;            /* the array's "]" is written */
  gint fd;
  gboolean regular;             /* a regular file: can be cut back */
  off_t whole;                  /* length of the whole lines written */
  gboolean cut_pending;         /* a failed cut left a partial line behind */
};

static gboolean
results_file_error (GError ** error, gint err, const gchar * what,
    const gchar * path)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err),
      "Cannot %s the results file '%s': %s", what, path, g_strerror (err));
  return FALSE;
}

/* Cut @file back to its whole lines. */
static gboolean
results_file_cut (GstFlorence2ResultsFile * file)
{
  if (!file->regular)
    return TRUE;
  file->cut_pending = ftruncate (file->fd, file->whole) != 0 ||
      lseek (file->fd, file->whole, SEEK_SET) == (off_t) - 1;
  return !file->cut_pending;
}

/* Length of @fd's content up to and including its last newline (0 when it
 * has none), @size bytes long. -1 with errno set on a read error. */
static off_t
whole_lines_length (gint fd, off_t size)
{
  gchar buf[4096];
  off_t end = size;

  while (end > 0) {
    off_t start = end > (off_t) sizeof (buf) ? end - (off_t) sizeof (buf) : 0;
    ssize_t n = pread (fd, buf, end - start, start);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -1 : 0;
    for (ssize_t i = n - 1; i >= 0; i--)
      if (buf[i] == '\n')
        return start + i + 1;
    end = start;
  }
  return 0;
}

/* Write @prefix @json @suffix as one record, in one write (short writes
 * continued); cut back to the last whole record when it does not fit. */
static gboolean
results_file_put (GstFlorence2ResultsFile * file, const gchar * prefix,
    const gchar * json, const gchar * suffix, GError ** error)
{
  gchar *line;
  gsize len, done = 0;
  gint err = 0;

  /* an earlier record could not be cut off: nothing may follow it */
  if (file->cut_pending && !results_file_cut (file))
    return results_file_error (error, errno, "cut back", file->path);
  line = g_strconcat (prefix, json, suffix, NULL);
  len = strlen (line);
  while (done < len) {
    ssize_t n = write (file->fd, line + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += n;
  }
  g_free (line);
  if (done == len) {
    file->whole += len;
    return TRUE;
  }
  /* the file holds whole records again, or the next write tries again */
  if (done > 0)
    results_file_cut (file);
  return results_file_error (error, err, "write to", file->path);
}

GstFlorence2ResultsFile *
gst_florence2_results_file_open (const gchar * path,
    GstFlorence2ResultsFormat format, gboolean append, GError ** error)
{
  GstFlorence2ResultsFile *file;
  struct stat st;
  gint fd;

  /* an array cannot be continued: its "]" would have to go first */
  if (format == GST_FLORENCE2_RESULTS_JSON_ARRAY)
    append = FALSE;

  /* O_RDWR: appending reads the end back to find the last whole line */
  fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC | (append ? 0 : O_TRUNC),
      0666);
  if (fd < 0 && errno == EACCES)        /* a write-only file, or a FIFO */
    fd = g_open (path, O_WRONLY | O_CREAT | O_CLOEXEC |
        (append ? O_APPEND : O_TRUNC), 0666);
  if (fd < 0) {
    results_file_error (error, errno, "open", path);
    return NULL;
  }
  file = g_new0 (GstFlorence2ResultsFile, 1);
  file->path = g_strdup (path);
  file->format = format;
  file->fd = fd;
  file->regular = fstat (fd, &st) == 0 && S_ISREG (st.st_mode);
  if (file->regular) {
    off_t whole = whole_lines_length (fd, st.st_size);

    file->whole = whole < 0 ? st.st_size : whole;
    if (file->whole != st.st_size)
      GST_WARNING ("results file '%s' ends with a cut line (%" G_GINT64_FORMAT
          " bytes): removing it", path, (gint64) (st.st_size - file->whole));
    if (!results_file_cut (file)) {
      results_file_error (error, errno, "set up", path);
      gst_florence2_results_file_close (file);
      return NULL;
    }
  }
  if (format == GST_FLORENCE2_RESULTS_JSON_ARRAY &&
      !results_file_put (file, "[", "", "", error)) {
    gst_florence2_results_file_close (file);
    return NULL;
  }
  return file;
}

gboolean
gst_florence2_results_file_write (GstFlorence2ResultsFile * file,
    const gchar * json, GError ** error)
{
  if (file->format == GST_FLORENCE2_RESULTS_JSON_ARRAY) {
    file->finished = FALSE;
    if (!results_file_put (file, file->records > 0 ? ",\n" : "\n", json, "",
            error))
      return FALSE;
    file->records++;
    return TRUE;
  }
  return results_file_put (file, "", json, "\n", error);
}

gboolean
gst_florence2_results_file_finish (GstFlorence2ResultsFile * file,
    GError ** error)
{
  off_t whole = file->whole;

  if (file->format != GST_FLORENCE2_RESULTS_JSON_ARRAY || file->finished)
    return TRUE;
  if (!results_file_put (file, "\n]\n", "", "", error))
    return FALSE;
  /* a later record takes the place of the "]" */
  file->finished = TRUE;
  file->whole = whole;
  file->cut_pending = file->regular;
  return TRUE;
}

void
gst_florence2_results_file_close (GstFlorence2ResultsFile * file)
{
  if (file == NULL)
    return;
  g_close (file->fd, NULL);
  g_free (file->path);
  g_free (file);
}
