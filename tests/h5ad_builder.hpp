#pragma once
// Small .h5ad files built in the tests with the HDF5 C API, laid out as anndata writes them: a
// sparse X as a group (attributes encoding-type and shape; datasets data, indices, indptr) or a
// dense X as a 2-D dataset, each array in the dtype a test chooses.
#include <hdf5.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparseae::test {

// The HDF5 type that holds a T in memory.
template <typename T>
hid_t native_type();
template <>
inline hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
inline hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
inline hid_t native_type<std::int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
inline hid_t native_type<std::int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
inline hid_t native_type<std::uint16_t>() {
  return H5T_NATIVE_UINT16;
}
template <>
inline hid_t native_type<std::uint8_t>() {
  return H5T_NATIVE_UINT8;
}

// An HDF5 file being built; closed (and complete on disk) when it goes.
class H5File {
 public:
  explicit H5File(const std::string& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    if (file_ < 0) throw std::runtime_error("H5Fcreate failed: " + path);
  }
  ~H5File() { H5Fclose(file_); }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  void group(const std::string& name) {
    const hid_t made = H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (made < 0) throw std::runtime_error("H5Gcreate2 failed: " + name);
    H5Gclose(made);
  }

  // A dataset of values, stored as file_type (H5T_STD_I64LE, ...; the native type by default).
  template <typename T>
  void dataset(const std::string& name, const std::vector<T>& values,
               const std::vector<hsize_t>& extents, hid_t file_type = -1) {
    const hid_t space = H5Screate_simple(static_cast<int>(extents.size()), extents.data(), nullptr);
    const hid_t made =
        H5Dcreate2(file_, name.c_str(), file_type >= 0 ? file_type : native_type<T>(), space,
                   H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (made < 0) throw std::runtime_error("H5Dcreate2 failed: " + name);
    if (!values.empty())
      H5Dwrite(made, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(made);
    H5Sclose(space);
  }
  template <typename T>
  void dataset(const std::string& name, const std::vector<T>& values) {
    dataset(name, values, {static_cast<hsize_t>(values.size())});
  }

  // A dataset with a null dataspace: what h5py writes for h5py.Empty.
  void null_dataset(const std::string& name) {
    const hid_t space = H5Screate(H5S_NULL);
    const hid_t made = H5Dcreate2(file_, name.c_str(), H5T_NATIVE_FLOAT, space, H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT);
    if (made < 0) throw std::runtime_error("H5Dcreate2 failed: " + name);
    H5Dclose(made);
    H5Sclose(space);
  }

  // A scalar string attribute of the object at name: variable-length UTF-8 as h5py writes a str,
  // or fixed-length when fixed says so (as h5py writes numpy bytes).
  void text_attribute(const std::string& object, const std::string& name, const std::string& value,
                      bool fixed = false) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, fixed ? value.size() : H5T_VARIABLE);
    if (!fixed) H5Tset_cset(type, H5T_CSET_UTF8);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t target = H5Oopen(file_, object.c_str(), H5P_DEFAULT);
    const hid_t attribute = H5Acreate2(target, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* text = value.c_str();
    H5Awrite(attribute, type, fixed ? static_cast<const void*>(text) : &text);
    H5Aclose(attribute);
    H5Oclose(target);
    H5Sclose(space);
    H5Tclose(type);
  }

  void shape_attribute(const std::string& object, const std::vector<std::int64_t>& shape,
                       const std::string& name = "shape") {
    const hsize_t count = shape.size();
    const hid_t space = H5Screate_simple(1, &count, nullptr);
    const hid_t target = H5Oopen(file_, object.c_str(), H5P_DEFAULT);
    const hid_t attribute =
        H5Acreate2(target, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attribute, H5T_NATIVE_INT64, shape.data());
    H5Aclose(attribute);
    H5Oclose(target);
    H5Sclose(space);
  }

 private:
  hid_t file_;
};

// An .h5ad whose X is a sparse group of encoding ("csr_matrix" or "csc_matrix") and shape.
template <typename Value, typename Index>
void write_sparse_x(const std::string& path, const std::string& encoding,
                    const std::vector<std::int64_t>& shape, const std::vector<Value>& data,
                    const std::vector<Index>& indices, const std::vector<Index>& indptr) {
  H5File file(path);
  file.text_attribute("/", "encoding-type", "anndata");
  file.text_attribute("/", "encoding-version", "0.1.0");
  file.group("X");
  file.text_attribute("X", "encoding-type", encoding);
  file.text_attribute("X", "encoding-version", "0.1.0");
  file.shape_attribute("X", shape);
  file.dataset("X/data", data);
  file.dataset("X/indices", indices);
  file.dataset("X/indptr", indptr);
}

}  // namespace sparseae::test
