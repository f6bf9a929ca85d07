// AnnData .h5ad files, through the HDF5 C library. The reader takes the counts in X: a group
// that AnnData encodes as csr_matrix or csc_matrix (data, indices, indptr; attribute shape) or a
// 2-D dataset. Each array is read into memory as the .npy of its dtype would hold it, so that the
// checks of the .npy and .npz readers (npy_counts, npy_integers, npy_dense) and the sparse
// assembly of the .npz reader (sparse_arrays_to_csr) apply unchanged. The writers build the file
// in memory (HDF5's core driver) and write its image through AtomicFile, so that a failed write
// leaves nothing behind.
//
// HDF5 parses files with little defence against crafted ones (Debian's 1.10.8 crashed on some
// while fuzzing): .h5ad input is trusted input, which README says.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/reading.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

using namespace io_detail;

namespace {

// An HDF5 id, closed by the function of its kind (H5Fclose, H5Dclose, ...) when it goes.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), close_(other.close_) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its error stack on stderr by default; these readers and writers say what went
// wrong in their one line instead. The setting is the library's (per thread in a thread-safe
// build), so each entry point sets it.
void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// The most specific message of HDF5's error stack (e.g. "truncated file: eof = 800, ..."), then
// the stack cleared.
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned depth, const H5E_error2_t* error, void* data) -> herr_t {
        if (depth == 0 && error->desc != nullptr) *static_cast<std::string*>(data) = error->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? "HDF5 gives no reason" : reason;
}

bool has_link(hid_t location, const std::string& name) {
  return H5Lexists(location, name.c_str(), H5P_DEFAULT) > 0;
}

// A string attribute (variable-length, as h5py and anndata write it, or fixed-length).
std::string read_text_attribute(hid_t object, const char* name, const std::string& what) {
  if (H5Aexists(object, name) <= 0) fail(what, std::string("no '") + name + "' attribute");
  const Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  const Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const Handle space(H5Aget_space(attribute.get()), H5Sclose);
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_STRING ||
      H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(what, std::string("attribute '") + name + "' is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    const Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
    char* text = nullptr;
    if (H5Aread(attribute.get(), memory.get(), &text) < 0)
      fail(what, std::string("cannot read attribute '") + name + "' (" + hdf5_reason() + ")");
    std::string result = text != nullptr ? text : "";
    H5free_memory(text);
    return result;
  }
  std::string text(H5Tget_size(type.get()), '\0');
  if (H5Aread(attribute.get(), type.get(), text.data()) < 0)
    fail(what, std::string("cannot read attribute '") + name + "' (" + hdf5_reason() + ")");
  return text.substr(0, text.find('\0'));
}

// AnnData's shape attribute of a sparse matrix (name "shape"): two integers.
std::vector<std::int64_t> read_shape_attribute(hid_t object, const char* name,
                                               const std::string& what) {
  const std::string quoted_name = std::string("'") + name + "'";
  if (H5Aexists(object, name) <= 0) fail(what, "no " + quoted_name + " attribute");
  const Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  const Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const Handle space(H5Aget_space(attribute.get()), H5Sclose);
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Sget_simple_extent_npoints(space.get()) != 2)
    fail(what, "attribute " + quoted_name + " is not two integers");
  std::vector<std::int64_t> shape(2);
  if (H5Aread(attribute.get(), H5T_NATIVE_INT64, shape.data()) < 0)
    fail(what, "cannot read attribute " + quoted_name + " (" + hdf5_reason() + ")");
  return shape;
}

// The .npy dtype that holds an HDF5 number type's values, and the native type HDF5 converts
// them into (the host is little-endian, as '<' says); nullptr for a type that is not a number
// these readers take.
struct Dtype {
  const char* descr;
  hid_t native;
};
Dtype dtype_of(hid_t type) {
  const std::size_t bytes = H5Tget_size(type);
  if (H5Tget_class(type) == H5T_FLOAT) {
    if (bytes == 4) return {"<f4", H5T_NATIVE_FLOAT};
    if (bytes == 8) return {"<f8", H5T_NATIVE_DOUBLE};
  } else if (H5Tget_class(type) == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (bytes) {
      case 1:
        return is_signed ? Dtype{"|i1", H5T_NATIVE_INT8} : Dtype{"|u1", H5T_NATIVE_UINT8};
      case 2:
        return is_signed ? Dtype{"<i2", H5T_NATIVE_INT16} : Dtype{"<u2", H5T_NATIVE_UINT16};
      case 4:
        return is_signed ? Dtype{"<i4", H5T_NATIVE_INT32} : Dtype{"<u4", H5T_NATIVE_UINT32};
      case 8:
        return is_signed ? Dtype{"<i8", H5T_NATIVE_INT64} : Dtype{"<u8", H5T_NATIVE_UINT64};
      default:
        break;
    }
  }
  return {nullptr, -1};
}

// The dataset at name (relative to location) read whole into keep, described as the .npy
// parse_npy would describe it; errors name what.
NpyArray read_dataset(hid_t location, const std::string& name, const std::string& what,
                      std::vector<unsigned char>& keep) {
  if (!has_link(location, name)) fail(what, "missing");
  const Handle dataset(H5Dopen2(location, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dataset.valid()) fail(what, "not a dataset (" + hdf5_reason() + ")");
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  const Handle space(H5Dget_space(dataset.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(what, "cannot read (" + hdf5_reason() + ")");
  const Dtype dtype = dtype_of(type.get());
  if (dtype.descr == nullptr)
    fail(what, "unsupported dtype (expected float32, float64 or an integer type of 1 to 8 bytes)");
  // h5py's Empty: a null dataspace holds no array at all (not even an empty one).
  if (H5Sget_simple_extent_type(space.get()) == H5S_NULL) fail(what, "empty (a null dataspace)");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(what, "cannot read its shape (" + hdf5_reason() + ")");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  NpyArray array;
  array.descr = dtype.descr;
  std::int64_t count = 1;
  for (const hsize_t extent : dims) {
    if (extent > 0 && static_cast<std::uint64_t>(count) >
                          static_cast<std::uint64_t>(io_limits::max_dense_values) / extent)
      fail(what, "holds more than the limit of " + std::to_string(io_limits::max_dense_values) +
                     " values");
    count *= static_cast<std::int64_t>(extent);
    array.shape.push_back(static_cast<std::int64_t>(extent));
  }
  const std::int64_t bytes = count * static_cast<std::int64_t>(H5Tget_size(dtype.native));
  const std::string shortfall = memory_shortfall(bytes);
  if (!shortfall.empty()) fail(what, "reading it " + shortfall);
  keep.assign(static_cast<std::size_t>(bytes), 0);
  if (count > 0 &&
      H5Dread(dataset.get(), dtype.native, H5S_ALL, H5S_ALL, H5P_DEFAULT, keep.data()) < 0)
    fail(what, "cannot read (" + hdf5_reason() + ")");
  array.data = keep.data();
  array.data_bytes = bytes;
  array.count = count;
  return array;
}

// X as AnnData encodes a scipy.sparse matrix: a group of data, indices and indptr.
HostCsr read_sparse_x(hid_t x, const std::string& path, Orientation orientation) {
  const std::string what = path + ": X";
  SparseArrays arrays;
  // anndata before 0.7 named the layout in h5sparse_format ("csr", "csc") and the shape in
  // h5sparse_shape; files it wrote are still about.
  if (H5Aexists(x, "encoding-type") <= 0 && H5Aexists(x, "h5sparse_format") > 0) {
    arrays.format = read_text_attribute(x, "h5sparse_format", what);
    if (arrays.format != "csr" && arrays.format != "csc")
      fail(what, "h5sparse_format '" + arrays.format + "' (this reader takes csr and csc)");
    arrays.shape = read_shape_attribute(x, "h5sparse_shape", what);
  } else {
    const std::string encoding = read_text_attribute(x, "encoding-type", what);
    if (encoding == "csr_matrix")
      arrays.format = "csr";
    else if (encoding == "csc_matrix")
      arrays.format = "csc";
    else
      fail(what, "encoding-type '" + encoding + "' (this reader takes csr_matrix and csc_matrix)");
    arrays.shape = read_shape_attribute(x, "shape", what);
  }
  std::vector<unsigned char> keep;
  arrays.values =
      npy_counts(read_dataset(x, "data", what + "/data", keep), what + "/data", arrays.integer);
  arrays.first =
      npy_integers(read_dataset(x, "indices", what + "/indices", keep), what + "/indices");
  arrays.second = npy_integers(read_dataset(x, "indptr", what + "/indptr", keep), what + "/indptr");
  return sparse_arrays_to_csr(what, arrays, orientation);
}

// Builds an .h5ad in memory, then writes it through AtomicFile.
class H5adWriter {
 public:
  explicit H5adWriter(std::string path)
      : path_(std::move(path)),
        access_(H5Pcreate(H5P_FILE_ACCESS), H5Pclose),
        file_(create(path_, access_.get()), H5Fclose) {
    write_text_attribute(file_.get(), "encoding-type", "anndata");
    write_text_attribute(file_.get(), "encoding-version", "0.1.0");
  }

  hid_t root() const { return file_.get(); }

  // A scalar string attribute, as h5py writes a str.
  void write_text_attribute(hid_t object, const char* name, const std::string& value) {
    const Handle type = text_type();
    const Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    const Handle attribute(
        H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* text = value.c_str();
    check(attribute.valid() && H5Awrite(attribute.get(), type.get(), &text) >= 0, name);
  }

  // A group with AnnData's encoding attributes.
  Handle group(hid_t parent, const char* name, const char* encoding, const char* version) {
    Handle made(H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    check(made.valid(), name);
    write_text_attribute(made.get(), "encoding-type", encoding);
    write_text_attribute(made.get(), "encoding-version", version);
    return made;
  }

  // An empty mapping (obsm, varm, layers, uns, obsp, varp).
  void dict(const char* name) { group(root(), name, "dict", "0.1.0"); }

  // A dataframe of no columns, its index "0", "1", ... as anndata gives an AnnData made without
  // names.
  void dataframe(const char* name, std::int64_t rows) {
    const Handle frame = group(root(), name, "dataframe", "0.2.0");
    write_text_attribute(frame.get(), "_index", "_index");
    const hsize_t none = 0;
    const Handle space(H5Screate_simple(1, &none, nullptr), H5Sclose);
    const Handle order(H5Acreate2(frame.get(), "column-order", H5T_IEEE_F64LE, space.get(),
                                  H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose);
    check(order.valid(), "column-order");

    std::vector<std::string> names(static_cast<std::size_t>(rows));
    std::vector<const char*> pointers(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      names[i] = std::to_string(i);
      pointers[i] = names[i].c_str();
    }
    const Handle type = text_type();
    const hsize_t count = names.size();
    const Handle index_space(H5Screate_simple(1, &count, nullptr), H5Sclose);
    const Handle index(H5Dcreate2(frame.get(), "_index", type.get(), index_space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT),
                       H5Dclose);
    check(index.valid(), "_index");
    check(pointers.empty() || H5Dwrite(index.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                       pointers.data()) >= 0,
          "_index");
    write_text_attribute(index.get(), "encoding-type", "string-array");
    write_text_attribute(index.get(), "encoding-version", "0.2.0");
  }

  // A dataset of values (native, stored little-endian as file) of the given extents.
  Handle dataset(hid_t parent, const char* name, hid_t native, hid_t file,
                 const std::vector<hsize_t>& extents, const void* values) {
    const Handle space(H5Screate_simple(static_cast<int>(extents.size()), extents.data(), nullptr),
                       H5Sclose);
    Handle made(H5Dcreate2(parent, name, file, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                H5Dclose);
    check(made.valid(), name);
    hsize_t count = 1;
    for (const hsize_t extent : extents) count *= extent;
    check(count == 0 || H5Dwrite(made.get(), native, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0,
          name);
    return made;
  }

  void write_shape_attribute(hid_t object, std::int64_t rows, std::int64_t cols) {
    const std::int64_t shape[2] = {rows, cols};
    const hsize_t two = 2;
    const Handle space(H5Screate_simple(1, &two, nullptr), H5Sclose);
    const Handle attribute(
        H5Acreate2(object, "shape", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    check(attribute.valid() && H5Awrite(attribute.get(), H5T_NATIVE_INT64, shape) >= 0, "shape");
  }

  // Writes the file's image to the path, atomically.
  void commit() {
    check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) >= 0, "the file");
    const ssize_t size = H5Fget_file_image(file_.get(), nullptr, 0);
    check(size >= 0, "the file");
    std::vector<unsigned char> image(static_cast<std::size_t>(size));
    check(H5Fget_file_image(file_.get(), image.data(), image.size()) == size, "the file");
    AtomicFile out(path_);
    out.write(image.data(), image.size());
    out.commit();
  }

 private:
  // In memory only (no backing store): commit writes the image.
  static hid_t create(const std::string& path, hid_t access) {
    silence_hdf5_errors();
    if (H5Pset_fapl_core(access, 1 << 20, 0) < 0)
      fail(path, "cannot set up HDF5's in-memory file (" + hdf5_reason() + ")");
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access);
    if (file < 0) fail(path, "cannot create an HDF5 file (" + hdf5_reason() + ")");
    return file;
  }

  // Variable-length UTF-8 strings, as h5py writes Python's str.
  static Handle text_type() {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    return type;
  }

  void check(bool ok, const std::string& what) const {
    if (!ok) fail(path_, "cannot write " + what + " (" + hdf5_reason() + ")");
  }

  std::string path_;
  Handle access_;
  Handle file_;
};

}  // namespace

LoadedMatrix read_h5ad(const std::string& path, Orientation orientation) {
  silence_hdf5_errors();
  file_size_bytes(path);  // a missing file: "cannot open: No such file or directory"
  const Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid())
    fail(path, "not an HDF5 file, or truncated or corrupt (" + hdf5_reason() + ")");
  if (!has_link(file.get(), "X"))
    fail(path, "no X (an AnnData file holds its counts in X; this one has none)");
  const Handle x(H5Oopen(file.get(), "X", H5P_DEFAULT), H5Oclose);
  if (!x.valid()) fail(path + ": X", "cannot open (" + hdf5_reason() + ")");
  LoadedMatrix loaded;
  const H5I_type_t kind = H5Iget_type(x.get());
  if (kind == H5I_GROUP) {
    loaded.sparse = true;
    loaded.csr = read_sparse_x(x.get(), path, orientation);
  } else if (kind == H5I_DATASET) {
    std::vector<unsigned char> keep;
    const std::string what = path + ": X";
    loaded.dense = npy_dense(read_dataset(file.get(), "X", what, keep), what);
  } else {
    fail(path + ": X", "neither a group (a sparse matrix) nor a dataset (a dense one)");
  }
  return loaded;
}

void write_h5ad(const std::string& path, const HostCsr& counts) {
  counts.validate();
  H5adWriter writer(path);
  {
    const Handle x = writer.group(writer.root(), "X", "csr_matrix", "0.1.0");
    writer.write_shape_attribute(x.get(), counts.rows, counts.cols);
    const auto nnz = static_cast<hsize_t>(counts.nnz());
    writer.dataset(x.get(), "data", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {nnz}, counts.values.data());
    static_assert(sizeof(ColIndex) == 4, "X/indices is written as int32");
    writer.dataset(x.get(), "indices", H5T_NATIVE_INT32, H5T_STD_I32LE, {nnz},
                   counts.col_indices.data());
    // int32 offsets where they fit, as scipy and anndata write them; int64 beyond.
    const hsize_t offsets = counts.row_offsets.size();
    if (counts.nnz() <= INT32_MAX) {
      const std::vector<std::int32_t> narrow(counts.row_offsets.begin(), counts.row_offsets.end());
      writer.dataset(x.get(), "indptr", H5T_NATIVE_INT32, H5T_STD_I32LE, {offsets}, narrow.data());
    } else {
      static_assert(sizeof(RowOffset) == 8, "wide X/indptr is written as int64");
      writer.dataset(x.get(), "indptr", H5T_NATIVE_INT64, H5T_STD_I64LE, {offsets},
                     counts.row_offsets.data());
    }
  }
  writer.dataframe("obs", counts.rows);
  writer.dataframe("var", counts.cols);
  for (const char* mapping : {"obsm", "varm", "layers", "uns", "obsp", "varp"})
    writer.dict(mapping);
  writer.commit();
}

void write_h5ad_codes(const std::string& path, const HostDense& codes) {
  require_dense_shape(path, codes);
  H5adWriter writer(path);
  writer.dataframe("obs", codes.rows);
  writer.dataframe("var", 0);
  {
    const Handle obsm = writer.group(writer.root(), "obsm", "dict", "0.1.0");
    const Handle array = writer.dataset(
        obsm.get(), kH5adCodesKey, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE,
        {static_cast<hsize_t>(codes.rows), static_cast<hsize_t>(codes.cols)}, codes.values.data());
    writer.write_text_attribute(array.get(), "encoding-type", "array");
    writer.write_text_attribute(array.get(), "encoding-version", "0.2.0");
  }
  for (const char* mapping : {"varm", "layers", "uns", "obsp", "varp"}) writer.dict(mapping);
  writer.commit();
}

}  // namespace sparseae
