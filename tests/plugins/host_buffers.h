/* Host-memory buffers and events shared by the test plugins (test code only). */
#ifndef TESSERA_TESTS_PLUGINS_HOST_BUFFERS_H_
#define TESSERA_TESTS_PLUGINS_HOST_BUFFERS_H_

#include <stdlib.h>
#include <string.h>

#include "tessera/plugin_api.h"

struct tsr_buffer {
  unsigned char* data;
  uint64_t size;
  int owned;
};
struct tsr_event {
  int unused;
};

static void tp_set_error(tsr_error* err, tsr_status code, const char* msg) {
  if (!err) return;
  err->code = code;
  strncpy(err->message, msg, TSR_ERROR_MESSAGE_SIZE - 1);
  err->message[TSR_ERROR_MESSAGE_SIZE - 1] = '\0';
}

static tsr_status tp_buffer_type_count(tsr_device* dev, int32_t* n, tsr_error* err) {
  (void)dev;
  (void)err;
  *n = 1;
  return TSR_OK;
}
static tsr_status tp_buffer_type_props(tsr_device* dev, int32_t type, tsr_buffer_type_props* out,
                                       tsr_error* err) {
  (void)dev;
  if (type != 0) {
    tp_set_error(err, TSR_ERR_NOT_FOUND, "one buffer type");
    return TSR_ERR_NOT_FOUND;
  }
  out->name = "host";
  out->alignment = 64;
  out->max_size = 0;
  out->host_visible = 1;
  return TSR_OK;
}
static tsr_status tp_buffer_alloc(tsr_device* dev, int32_t type, uint64_t size, tsr_buffer** out,
                                  tsr_error* err) {
  (void)dev;
  (void)type;
  tsr_buffer* b = (tsr_buffer*)calloc(1, sizeof(tsr_buffer));
  b->data = (unsigned char*)calloc(1, size ? size : 1);
  if (!b->data) {
    free(b);
    tp_set_error(err, TSR_ERR_OUT_OF_MEMORY, "out of memory");
    return TSR_ERR_OUT_OF_MEMORY;
  }
  b->size = size;
  b->owned = 1;
  *out = b;
  return TSR_OK;
}
static tsr_status tp_buffer_import_host(tsr_device* dev, void* p, uint64_t size, tsr_buffer** out,
                                        tsr_error* err) {
  (void)dev;
  (void)err;
  tsr_buffer* b = (tsr_buffer*)calloc(1, sizeof(tsr_buffer));
  b->data = (unsigned char*)p;
  b->size = size;
  b->owned = 0;
  *out = b;
  return TSR_OK;
}
static void tp_buffer_free(tsr_buffer* b) {
  if (!b) return;
  if (b->owned) free(b->data);
  free(b);
}
static tsr_status tp_buffer_map(tsr_buffer* b, void** out, tsr_error* err) {
  (void)err;
  *out = b->data;
  return TSR_OK;
}
static tsr_status tp_upload(tsr_buffer* dst, uint64_t off, const void* src, uint64_t size,
                            tsr_event* done, tsr_error* err) {
  (void)done;
  if (off + size > dst->size) {
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "upload out of bounds");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  memcpy(dst->data + off, src, size);
  return TSR_OK;
}
static tsr_status tp_download(tsr_buffer* src, uint64_t off, void* dst, uint64_t size,
                              tsr_event* done, tsr_error* err) {
  (void)done;
  if (off + size > src->size) {
    tp_set_error(err, TSR_ERR_INVALID_ARGUMENT, "download out of bounds");
    return TSR_ERR_INVALID_ARGUMENT;
  }
  memcpy(dst, src->data + off, size);
  return TSR_OK;
}
static tsr_status tp_copy_unsupported(tsr_buffer* s, uint64_t so, tsr_buffer* d, uint64_t doff,
                                      uint64_t size, tsr_event* done, tsr_error* err) {
  (void)s;
  (void)so;
  (void)d;
  (void)doff;
  (void)size;
  (void)done;
  tp_set_error(err, TSR_ERR_UNSUPPORTED, "no device-to-device copy: stage through the host");
  return TSR_ERR_UNSUPPORTED;
}
static float* tp_f32(const tsr_tensor* t) {
  return (float*)(t->buffer->data + t->offset);
}
static int64_t tp_numel(const tsr_tensor* t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) n *= t->ne[i];
  return n;
}
static int tp_contiguous_f32(const tsr_tensor* t) {
  if (t->dtype != TSR_DTYPE_F32) return 0;
  int64_t stride = 4;
  for (int i = t->ndim - 1; i >= 0; --i) {
    if (t->ne[i] != 1 && t->nb[i] != stride) return 0;
    stride *= t->ne[i];
  }
  return 1;
}

#endif
