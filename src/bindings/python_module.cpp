// The Python module sparseae._sparseae: the library's files, training (fit), trained models, PCA
// and lossless mode over numpy arrays, for the pure-Python package (python/sparseae), which gives
// them their scikit-learn form. Matrices cross as CSR arrays (indptr, indices, data), cast only
// where their dtype is not the library's; errors cross as SparseaeError with the engine's message.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/train_plan.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/fit.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/recipe_search.hpp"

namespace py = pybind11;

namespace sparseae {
namespace {

using Indptr = py::array_t<RowOffset, py::array::c_style | py::array::forcecast>;
using Indices = py::array_t<ColIndex, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// A vector's contents as a numpy array that owns them (no copy): the capsule frees the vector.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(values));
  py::capsule free_owner(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(std::move(shape), owner->data(), free_owner);
}

py::array_t<float> dense_to_numpy(HostDense&& dense) {
  return to_numpy(std::move(dense.values), {dense.rows, dense.cols});
}

// (rows, cols, indptr, indices, data): what scipy.sparse.csr_matrix((data, indices, indptr),
// shape) takes.
py::tuple csr_to_numpy(HostCsr&& csr) {
  const auto nnz = static_cast<py::ssize_t>(csr.nnz());
  const auto offsets = static_cast<py::ssize_t>(csr.row_offsets.size());
  return py::make_tuple(csr.rows, csr.cols, to_numpy(std::move(csr.row_offsets), {offsets}),
                        to_numpy(std::move(csr.col_indices), {nnz}),
                        to_numpy(std::move(csr.values), {nnz}));
}

// The row and column of entry k, for messages.
std::string entry_position(const HostCsr& csr, std::int64_t k) {
  const auto row = std::upper_bound(csr.row_offsets.begin(), csr.row_offsets.end(), k) -
                   csr.row_offsets.begin() - 1;
  return "row " + std::to_string(row) + ", column " +
         std::to_string(csr.col_indices[static_cast<std::size_t>(k)]);
}

// Counts in: the arrays of a CSR matrix (scipy's, canonical: the package sums duplicates) as the
// HostCsr the library takes, checked as a reader checks a file. Integer values above what float32
// holds exactly are refused as the readers refuse them; float values are cast (one past float32's
// range becomes infinite and is refused as not finite).
HostCsr csr_from_numpy(std::int64_t rows, std::int64_t cols, const Indptr& indptr,
                       const Indices& indices, const py::array& data, const std::string& what) {
  HostCsr csr;
  csr.rows = rows;
  csr.cols = cols;
  csr.row_offsets.assign(indptr.data(), indptr.data() + indptr.size());
  csr.col_indices.assign(indices.data(), indices.data() + indices.size());
  const char kind = data.dtype().kind();
  if (kind == 'i' || kind == 'u') {
    const DoubleArray exact = DoubleArray::ensure(data);
    csr.values.resize(static_cast<std::size_t>(exact.size()));
    for (py::ssize_t k = 0; k < exact.size(); ++k) {
      const double value = exact.data()[k];
      if (value > static_cast<double>(io_limits::max_exact_count) && k < indices.size())
        throw Error(what + ": " + entry_position(csr, k) + ": count " +
                    std::to_string(static_cast<long long>(value)) + " exceeds " +
                    std::to_string(io_limits::max_exact_count) +
                    ", the largest that float32 holds exactly");
      csr.values[static_cast<std::size_t>(k)] = static_cast<float>(value);
    }
  } else {
    const FloatArray values = FloatArray::ensure(data);
    csr.values.assign(values.data(), values.data() + values.size());
  }
  require_counts(csr, what);
  return csr;
}

// Latent codes in: a 2-D float array.
HostDense dense_from_numpy(const FloatArray& array) {
  require(array.ndim() == 2,
          "latents: a 2-D array (rows x latent width), not " + std::to_string(array.ndim()) + "-D");
  HostDense dense;
  dense.rows = array.shape(0);
  dense.cols = array.shape(1);
  dense.values.assign(array.data(), array.data() + array.size());
  return dense;
}

std::shared_ptr<Backend> open_backend(const std::string& name) {
  return make_backend(parse_backend_choice(name));
}

// A trained model (an autoencoder or a PCA) on a backend, with the checkpoint it came from.
class Model {
 public:
  Model(std::shared_ptr<Backend> backend, Checkpoint checkpoint)
      : backend_(std::move(backend)),
        checkpoint_(std::move(checkpoint)),
        model_(*backend_, checkpoint_.config, checkpoint_.state.parameters) {}

  static Model load(const std::string& path, const std::string& backend) {
    return Model(open_backend(backend), load_checkpoint(path));
  }
  void save(const std::string& path) const { save_checkpoint(path, checkpoint_); }

  py::array_t<float> encode(const HostCsr& counts) { return dense_to_numpy(model_.encode(counts)); }
  // Codes back to counts decoded by decode (the model's own decode when none), or, for
  // "values", to the unrounded means.
  py::object decode(const HostDense& latents, const std::optional<std::string>& decode) {
    require(latents.cols == model_.latent_width(), "latents: " + std::to_string(latents.cols) +
                                                       " columns, the model's code has " +
                                                       std::to_string(model_.latent_width()));
    if (decode && *decode == "values") return dense_to_numpy(model_.decode(latents));
    const DecodeMode mode = decode ? parse_decode_mode(*decode) : model_.default_decode();
    return csr_to_numpy(model_.counts_from_outputs(model_.decode_outputs(latents), mode));
  }
  std::string evaluate(const HostCsr& counts, const std::optional<std::string>& decode) {
    return (decode ? model_.evaluate(counts, parse_decode_mode(*decode)) : model_.evaluate(counts))
        .to_json();
  }
  void require_width(const HostCsr& counts) const {
    require(counts.cols == model_.input_width(), "X: " + std::to_string(counts.cols) +
                                                     " columns, the model was fitted on " +
                                                     std::to_string(model_.input_width()));
  }

  const Checkpoint& checkpoint() const { return checkpoint_; }
  Backend& backend() { return *backend_; }
  TrainedModel& trained() { return model_; }

 private:
  std::shared_ptr<Backend> backend_;
  Checkpoint checkpoint_;
  TrainedModel model_;
};

py::dict epoch_dict(const EpochReport& e) {
  py::dict d;
  d["epoch"] = e.epoch;
  d["train_loss"] = e.train_loss;
  d["val_loss"] = e.val_loss;
  d["val_f1"] = e.score;
  d["best"] = e.best;
  d["seconds"] = e.seconds;
  d["samples_per_second"] = e.samples_per_second;
  d["learning_rate"] = e.learning_rate;
  d["skipped_steps"] = e.skipped_steps;
  return d;
}

// Trains with sae train's flags (cli::plan_training) through fit(), the GIL released. After every
// step the GIL is taken back for progress(epoch, step, steps, samples_per_second, loss) and for
// PyErr_CheckSignals: a Ctrl-C (or an exception in progress) stops training there
// (TrainObserver::stop_requested) and is raised once fit() has returned.
py::tuple fit_model(const HostCsr& data, const std::vector<std::string>& flags,
                    const std::optional<py::function>& progress) {
  require(data.rows >= 2, "X: " + std::to_string(data.rows) + (data.rows == 1 ? " row" : " rows") +
                              "; fitting a model needs at least 2");
  const cli::TrainPlan plan = cli::plan_training(flags, data.cols);
  FitOptions options;
  options.model = plan.run.model;
  options.train = plan.run.train;
  options.decode = plan.decode;
  options.select_by_f1 = plan.select_by_f1;
  options.latent_refinement = plan.run.latent_refinement;
  bool python_error = false;  // the error indicator holds what stopped training
  options.observer.on_step = [&](int epoch, std::int64_t step, std::int64_t steps, double rate,
                                 double loss) {
    if (python_error) return;
    py::gil_scoped_acquire gil;
    try {
      if (progress) (*progress)(epoch, step, steps, rate, loss);
      if (PyErr_CheckSignals() != 0) python_error = true;
    } catch (py::error_already_set& error) {
      error.restore();
      python_error = true;
    }
  };
  options.observer.stop_requested = [&] { return python_error; };
  std::shared_ptr<Backend> backend = make_backend(plan.backend);
  FitResult result;
  try {
    py::gil_scoped_release release;
    result = fit(*backend, data, options);
  } catch (...) {
    if (python_error) PyErr_Clear();  // the engine's own error is the one to report
    throw;
  }
  if (python_error) throw py::error_already_set();
  py::list epochs;
  for (const EpochReport& e : result.epochs) epochs.append(epoch_dict(e));
  py::dict info;
  info["epochs"] = epochs;
  info["kept_epoch"] = result.kept_epoch;
  info["validation_loss"] = result.validation_loss;
  info["validation"] = result.validation.to_json();
  info["decode"] = decode_mode_name(*result.run.decode);
  info["other_decode"] = result.other_decode
                             ? py::object(py::str(decode_mode_name(*result.other_decode)))
                             : py::none();
  info["other_decode_f1"] = result.other_decode_f1;
  info["backend"] = backend->description();
  return py::make_tuple(Model(backend, result.checkpoint()), info);
}

py::dict outcome_dict(const RecipeOutcome& outcome) {
  py::dict d;
  d["loss"] = loss_name(outcome.recipe.loss);
  d["decode"] = decode_mode_name(outcome.recipe.decode);
  d["latent_act"] = activation_name(outcome.recipe.latent_activation);
  d["learning_rate"] = outcome.recipe.learning_rate;
  d["pca_anchor"] = outcome.recipe.pca_anchor;
  d["huber_delta"] = outcome.recipe.huber_delta > 0.0f
                         ? py::object(py::float_(outcome.recipe.huber_delta))
                         : py::none();
  d["epochs"] = outcome.epochs;
  d["exact_f1"] = outcome.exact_f1 >= 0 ? py::object(py::float_(outcome.exact_f1)) : py::none();
  d["seconds"] = outcome.seconds;
  d["eliminated"] = outcome.eliminated;
  d["failure"] = outcome.failure.empty() ? py::object(py::none()) : py::str(outcome.failure);
  return d;
}

// The recipe search with sae train --auto's flags (cli::plan_recipe_search), the GIL released.
// Between training steps the GIL is taken back for PyErr_CheckSignals: a Ctrl-C ends the search
// (RecipeSearchConfig::stop_requested) and is raised once it has returned.
py::tuple search_model(const HostCsr& data, const std::vector<std::string>& flags) {
  require(data.rows >= 2, "X: " + std::to_string(data.rows) + (data.rows == 1 ? " row" : " rows") +
                              "; fitting a model needs at least 2");
  cli::SearchPlan plan = cli::plan_recipe_search(flags, data.cols);
  bool python_error = false;  // the error indicator holds what stopped the search
  plan.search.stop_requested = [&] {
    if (!python_error) {
      py::gil_scoped_acquire gil;
      python_error = PyErr_CheckSignals() != 0;
    }
    return python_error;
  };
  std::shared_ptr<Backend> backend = make_backend(plan.backend);
  RecipeSearchResult result;
  try {
    py::gil_scoped_release release;
    result = search_recipes(*backend, data, plan.search);
  } catch (const RecipeSearchStopped&) {
    if (python_error) throw py::error_already_set();
    throw;
  } catch (...) {
    if (python_error) PyErr_Clear();  // the engine's own error is the one to report
    throw;
  }
  if (python_error) throw py::error_already_set();
  py::list recipes;
  for (const RecipeOutcome& outcome : result.outcomes) recipes.append(outcome_dict(outcome));
  py::dict info;
  info["recipes"] = recipes;
  info["best"] = result.best;
  info["validation_rows"] = result.validation_rows;
  info["search_rows"] = result.search_rows;
  info["search_validation_rows"] = result.search_validation_rows;
  py::object all_rows = py::none();
  if (result.all_rows_exact_f1 >= 0) {
    py::dict d;
    d["epochs"] = result.all_rows_epochs;
    d["exact_f1"] = result.all_rows_exact_f1;
    d["seconds"] = result.all_rows_seconds;
    d["failure"] =
        result.all_rows_failure.empty() ? py::object(py::none()) : py::str(result.all_rows_failure);
    all_rows = d;
  }
  info["all_rows"] = all_rows;
  py::object refinement = py::none();
  if (result.refined_exact_f1 >= 0) {
    py::dict d;
    d["steps"] = plan.search.refinement.steps;
    d["rate"] = plan.search.refinement.rate;
    d["exact_f1"] = result.refined_exact_f1;
    d["seconds"] = result.refined_seconds;
    d["kept"] = result.best_run.latent_refinement.steps > 0;
    refinement = d;
  }
  if (!result.refinement_skipped.empty()) {
    py::dict d;
    d["steps"] = plan.search.refinement.steps;
    d["rate"] = plan.search.refinement.rate;
    d["skipped"] = result.refinement_skipped;
    refinement = d;
  }
  info["refinement"] = refinement;
  info["backend"] = backend->description();
  return py::make_tuple(Model(backend, Checkpoint{result.best_run, result.best_state}), info);
}

py::tuple fit_pca_model(const HostCsr& data, std::int64_t components, const std::string& solver,
                        std::uint64_t seed, const std::string& backend_name) {
  std::shared_ptr<Backend> backend = open_backend(backend_name);
  PcaConfig config;
  config.components = components;
  config.solver = parse_pca_solver(solver);
  config.seed = seed;
  PcaModel pca;
  {
    py::gil_scoped_release release;
    pca = fit_pca(*backend, data, config);
  }
  // Fitted on every row: the checkpoint's split holds no validation rows.
  Checkpoint checkpoint = pca_checkpoint(pca_run_config(pca, "", 0.0, seed), pca_parameters(pca));
  py::dict info;
  info["rows"] = pca.rows;
  info["solver"] = pca_solver_name(pca.solver);
  info["total_variance"] = pca.total_variance;
  info["explained_variance_ratio"] = pca.explained_variance_ratio();
  info["explained_variance"] = pca.explained_variance;
  const auto k = static_cast<py::ssize_t>(pca.component_count());
  const auto d = static_cast<py::ssize_t>(pca.input_dim());
  info["mean"] = to_numpy(std::move(pca.mean), {d});
  info["components"] = to_numpy(std::move(pca.components), {k, d});
  return py::make_tuple(Model(backend, std::move(checkpoint)), info);
}

py::dict compress_rows(const std::string& path, const HostCsr& data, Model* model,
                       const std::string& codec, int latent_bits, std::int64_t block_rows) {
  LosslessOptions options;
  options.codec = codec.empty() ? (model ? LosslessCodec::model : LosslessCodec::order0)
                                : parse_lossless_codec(codec);
  require(model != nullptr || options.codec == LosslessCodec::order0,
          "compress: codec '" + codec + "' needs the model (model=)");
  options.latent_bits = latent_bits;
  options.block_rows = block_rows;
  CsrRowSource source(data);
  LosslessSizes sizes;
  {
    py::gil_scoped_release release;
    sizes = options.codec != LosslessCodec::order0
                ? compress_lossless(model->backend(), model->checkpoint().config,
                                    model->checkpoint().state.parameters, source, path, options)
                : compress_lossless(source, path, options);
  }
  py::dict d;
  d["bytes"] = sizes.total();
  d["rows"] = sizes.rows;
  d["cols"] = sizes.cols;
  d["nonzeros"] = sizes.nonzeros;
  d["blocks"] = sizes.blocks;
  d["order0_blocks"] = sizes.order0_blocks;
  d["latent_bytes"] = sizes.latent_bytes;
  d["residual_bytes"] = sizes.residual_bytes;
  d["order0_bytes"] = sizes.order0_bytes;
  d["table_bytes"] = sizes.table_bytes;
  d["framing_bytes"] = sizes.framing_bytes;
  return d;
}

py::tuple decompress_rows(const std::string& path, Model* model) {
  HostCsr all;
  const auto start = [&](const LosslessFileInfo& info) {
    all.rows = info.rows;
    all.cols = info.cols;
    all.row_offsets.reserve(static_cast<std::size_t>(info.rows) + 1);
    all.col_indices.reserve(static_cast<std::size_t>(info.nonzeros));
    all.values.reserve(static_cast<std::size_t>(info.nonzeros));
  };
  // Blocks come in row order: each appends its rows.
  const auto visit = [&](std::int64_t, const HostCsr& block) {
    const RowOffset base = all.nnz();
    for (std::int64_t r = 1; r <= block.rows; ++r)
      all.row_offsets.push_back(base + block.row_offsets[static_cast<std::size_t>(r)]);
    all.col_indices.insert(all.col_indices.end(), block.col_indices.begin(),
                           block.col_indices.end());
    all.values.insert(all.values.end(), block.values.begin(), block.values.end());
  };
  {
    py::gil_scoped_release release;
    if (model)
      decompress_lossless(model->backend(), model->checkpoint().config,
                          model->checkpoint().state.parameters, path, 4096, start, visit);
    else
      decompress_lossless(path, start, visit);
  }
  return csr_to_numpy(std::move(all));
}

}  // namespace
}  // namespace sparseae

PYBIND11_MODULE(_sparseae, m) {
  using namespace sparseae;
  m.doc() = "sparseae's engine; use the package sparseae, which wraps it";
  // Bad input and failed runs: a ValueError, as scikit-learn raises for bad data.
  py::register_exception<Error>(m, "SparseaeError", PyExc_ValueError);

  // Every function taking counts takes them as (rows, cols, indptr, indices, data).
  const auto csr = [](std::int64_t rows, std::int64_t cols, const Indptr& indptr,
                      const Indices& indices, const py::array& data, const std::string& what) {
    return csr_from_numpy(rows, cols, indptr, indices, data, what);
  };

  m.def(
      "read",
      [](const std::string& path, bool transpose) -> py::object {
        LoadedMatrix loaded =
            read_matrix(path, transpose ? Orientation::transposed : Orientation::as_stored);
        if (loaded.sparse) return csr_to_numpy(std::move(loaded.csr));
        return dense_to_numpy(std::move(loaded.dense));
      },
      py::arg("path"), py::arg("transpose") = false);
  m.def("write_csr", [csr](const std::string& path, std::int64_t rows, std::int64_t cols,
                           const Indptr& indptr, const Indices& indices, const py::array& data) {
    const MatrixFormat format =
        output_format(path,
                      {MatrixFormat::matrix_market, MatrixFormat::npz, MatrixFormat::h5ad,
                       MatrixFormat::npy, MatrixFormat::csv},
                      "sparseae.write");
    write_counts(path, format, csr(rows, cols, indptr, indices, data, "X"));
  });
  py::class_<Model>(m, "Model")
      .def_static("load", &Model::load, py::arg("path"), py::arg("backend") = "auto")
      .def("save", &Model::save)
      .def("encode",
           [csr](Model& self, std::int64_t rows, std::int64_t cols, const Indptr& indptr,
                 const Indices& indices, const py::array& data) {
             const HostCsr counts = csr(rows, cols, indptr, indices, data, "X");
             self.require_width(counts);
             return self.encode(counts);
           })
      .def("decode",
           [](Model& self, const FloatArray& latents, const std::optional<std::string>& decode) {
             return self.decode(dense_from_numpy(latents), decode);
           })
      .def("evaluate",
           [csr](Model& self, std::int64_t rows, std::int64_t cols, const Indptr& indptr,
                 const Indices& indices, const py::array& data,
                 const std::optional<std::string>& decode) {
             const HostCsr counts = csr(rows, cols, indptr, indices, data, "X");
             self.require_width(counts);
             return self.evaluate(counts, decode);
           })
      .def_property_readonly(
          "config_json",
          [](const Model& self) { return run_config_to_json(self.checkpoint().config); })
      .def_property_readonly("parameters",
                             [](const Model& self) {
                               std::vector<float> copy = self.checkpoint().state.parameters;
                               const auto n = static_cast<py::ssize_t>(copy.size());
                               return to_numpy(std::move(copy), {n});
                             })
      .def_property_readonly("input_width",
                             [](Model& self) { return self.trained().input_width(); })
      .def_property_readonly("latent_width",
                             [](Model& self) { return self.trained().latent_width(); })
      .def_property_readonly(
          "decode_name",
          [](Model& self) {
            return std::string(decode_mode_name(self.trained().default_decode()));
          })
      .def_property_readonly("backend", [](Model& self) { return self.backend().description(); });

  m.def("fit",
        [csr](std::int64_t rows, std::int64_t cols, const Indptr& indptr, const Indices& indices,
              const py::array& data, const std::vector<std::string>& flags,
              const std::optional<py::function>& progress) {
          return fit_model(csr(rows, cols, indptr, indices, data, "X"), flags, progress);
        });
  m.def("search",
        [csr](std::int64_t rows, std::int64_t cols, const Indptr& indptr, const Indices& indices,
              const py::array& data, const std::vector<std::string>& flags) {
          return search_model(csr(rows, cols, indptr, indices, data, "X"), flags);
        });
  m.def("fit_pca",
        [csr](std::int64_t rows, std::int64_t cols, const Indptr& indptr, const Indices& indices,
              const py::array& data, std::int64_t components, const std::string& solver,
              std::uint64_t seed, const std::string& backend) {
          return fit_pca_model(csr(rows, cols, indptr, indices, data, "X"), components, solver,
                               seed, backend);
        });
  m.def("compress",
        [csr](const std::string& path, std::int64_t rows, std::int64_t cols, const Indptr& indptr,
              const Indices& indices, const py::array& data, Model* model, const std::string& codec,
              int latent_bits, std::int64_t block_rows) {
          const HostCsr counts = csr(rows, cols, indptr, indices, data, "X");
          if (model) model->require_width(counts);
          return compress_rows(path, counts, model, codec, latent_bits, block_rows);
        });
  m.def("decompress", &decompress_rows);
}
