"""Open bbeval feature-cache files with pyarrow + numpy alone, as a user of another tool would.

    python tools/check_parquet_schema.py .bbeval-cache/<file>.parquet [...]

Checks the documented schema (index u32, id string, label u32, feature fixed_size_list<f32>[width] or,
with f16 storage, binary rows of width little-endian halves) and the key in the footer, and prints the
shape and the first values. Exits non-zero on any mismatch.
"""
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def load(path):
    table = pq.read_table(path)
    meta = pq.ParquetFile(path).metadata.metadata or {}
    key = json.loads(meta[b"bbeval.key"])
    assert table.schema.names == ["index", "id", "label", "feature"], table.schema.names
    assert table.schema.field("index").type == pa.uint32()
    assert table.schema.field("label").type == pa.uint32()
    feature = table.column("feature").combine_chunks()
    if key.get("storage", "f32") == "f16":
        assert feature.type in (pa.binary(), pa.large_binary(), pa.binary_view()), feature.type
        rows = [np.frombuffer(b.as_py(), dtype="<f2") for b in feature]
        values = np.stack(rows).astype(np.float32)
    else:
        assert pa.types.is_fixed_size_list(feature.type) and feature.type.value_type == pa.float32(), feature.type
        values = feature.flatten().to_numpy().reshape(len(table), feature.type.list_size)
    return key, table.column("label").to_numpy(), values


def main():
    for path in sys.argv[1:]:
        key, labels, values = load(path)
        print(f"{path}: {values.shape} {key.get('storage', 'f32')} feature={key['feature']} "
              f"labels={labels[:5].tolist()} first={values[0, :4].tolist()}")


if __name__ == "__main__":
    main()
