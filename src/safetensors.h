// Minimal safetensors reader/writer for float32 tensors.
// Format: 8-byte little-endian header length N, N bytes of JSON header
// ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//   "__metadata__": {"key": "string value", ...}}), then the raw data.
#ifndef ATTN_SAFETENSORS_H
#define ATTN_SAFETENSORS_H

#define ST_MAX_DIMS 4

typedef struct {
    char *name;
    int ndim;
    long shape[ST_MAX_DIMS];
    long numel;
    float *data;          // owned by the SafeTensors that loaded it
} StTensor;

typedef struct {
    int n_tensors;
    StTensor *tensors;
    int n_meta;
    char **meta_keys;     // __metadata__ (string -> string), in file order
    char **meta_values;
} SafeTensors;

// Loads and validates a whole file: header bounds, F32 dtype, shapes that
// match the byte ranges, ranges inside the file and not overlapping.
// Errors name the file and the problem.
int st_load(const char *path, SafeTensors *st);
void st_free(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);
const char *st_meta(const SafeTensors *st, const char *key);  // NULL if absent

// Writes tensors (in the given order) and metadata atomically.
int st_save(const char *path, const StTensor *tensors, int n_tensors,
            const char *const *meta_keys, const char *const *meta_values, int n_meta);

#endif
