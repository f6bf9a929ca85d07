// The real `sae` binary (its path compiled in as SAE_BINARY, or $SAE_BINARY) run on small files: gen, train with
// every output it can write, every input format, encode / decode / eval on the checkpoint,
// --resume, every train flag at least once, and bad input that must fail with one clear line.
// Everything runs on the cpu backend with tiny data and one or two epochs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "file_builders.hpp"
#include "h5ad_builder.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/recipe_search.hpp"
#include "sparseae/trainer.hpp"
#include "sparseae/version.hpp"
#include "test_util.hpp"

#ifndef SAE_BINARY
#error "SAE_BINARY must name the sae executable"
#endif

namespace sparseae {
namespace {

using test::contains;

// The binary under test: the one built beside this test, unless the environment names another
// (the GPU check runs a carried copy whose build path does not exist on that machine).
std::string sae_binary() {
  const char* from_environment = std::getenv("SAE_BINARY");
  return from_environment != nullptr ? from_environment : SAE_BINARY;
}

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The JSON object that follows "key": in text (metrics objects hold no nested braces).
std::string json_object(const std::string& text, const std::string& key) {
  const std::size_t at = text.find("\"" + key + "\": {");
  if (at == std::string::npos) return "";
  const std::size_t open = text.find('{', at);
  return text.substr(open, text.find('}', open) - open + 1);
}

// A fresh working directory per test suite holding x.mtx (300 rows of the embedded dataset) and,
// once trained, m.ckpt with the outputs of one full `sae train`.
class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("sparseae-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    trained_.reset();
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  // Runs `sae args` in the suite's directory (or its subdirectory subdir), after the shell
  // commands of setup (e.g. "ulimit -d 1048576; "), capturing stdout, stderr and the exit code.
  static Result sae(const std::string& args, const std::string& subdir = "",
                    const std::string& setup = "") {
    const std::string out = file("stdout.txt");
    const std::string err = file("stderr.txt");
    const std::string command = "cd '" + (dir_ / subdir).string() + "' && " + setup + "'" +
                                sae_binary() + "' " + args + " > '" + out + "' 2> '" + err + "'";
    const int status = std::system(command.c_str());
    Result result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
  }

  // Generates x.mtx once.
  static void ensure_data() {
    if (fs::exists(file("x.mtx"))) return;
    const Result r = sae("gen --rows 300 --out x.mtx");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // The reference training run, once: 2 epochs with every output.
  static const Result& trained() {
    if (!trained_) {
      ensure_data();
      trained_ =
          sae("train --data x.mtx --epochs 2 --hidden 32 --latent 8 -o m.ckpt "
              "--metrics-log log.jsonl --json --latents z.npy --reconstruction r.mtx "
              "--quiet --backend cpu");
    }
    return *trained_;
  }

  static fs::path dir_;
  static std::optional<Result> trained_;
};

fs::path Cli::dir_;
std::optional<Result> Cli::trained_;

::testing::AssertionResult succeeded(const Result& r) {
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "exit code " << r.exit_code << ", stderr: " << r.err;
}

// A checkpoint's data_source names the file it was trained on by its absolute path.
::testing::AssertionResult names_file(const std::string& data_source, const std::string& path) {
  if (!fs::path(data_source).is_absolute())
    return ::testing::AssertionFailure() << "data_source '" << data_source << "' is not absolute";
  std::error_code error;
  if (fs::equivalent(data_source, path, error)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "data_source '" << data_source << "' is not " << path;
}

// Every value the same float.
void expect_same(const HostDense& a, const HostDense& b, const char* what) {
  EXPECT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.cols, b.cols) << what;
  EXPECT_TRUE(a.values == b.values) << what << ": values differ";
}

void expect_same(const HostCsr& a, const HostCsr& b, const char* what) {
  EXPECT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.cols, b.cols) << what;
  EXPECT_EQ(a.row_offsets, b.row_offsets) << what;
  EXPECT_EQ(a.col_indices, b.col_indices) << what;
  EXPECT_EQ(a.values, b.values) << what;
}

TEST_F(Cli, GenWritesCountsOfTheEmbeddedGenerator) {
  const Result r = sae("gen --rows 300 --out x.mtx");
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(r.err, "sae gen: wrote x.mtx: 300 rows x 512 columns, " +
                       std::to_string(read_matrix_market(file("x.mtx")).nnz()) + " non-zeros\n");
  const HostCsr x = read_matrix_market(file("x.mtx"));
  EXPECT_EQ(x.rows, 300);
  EXPECT_EQ(x.cols, 512);
  EXPECT_GT(x.nnz(), 300 * 10);

  ASSERT_TRUE(succeeded(sae("gen --rows 50 --cols 64 --topics 4 --nnz 5 --seed 3 --out a.mtx")));
  ASSERT_TRUE(succeeded(sae("gen --rows 50 --cols 64 --topics 4 --nnz 5 --seed 3 --out b.mtx")));
  ASSERT_TRUE(succeeded(sae("gen --rows 50 --cols 64 --topics 4 --nnz 5 --seed 4 --out c.mtx")));
  const HostCsr a = read_matrix_market(file("a.mtx"));
  EXPECT_EQ(a.rows, 50);
  EXPECT_EQ(a.cols, 64);
  EXPECT_EQ(read_text(file("a.mtx")), read_text(file("b.mtx"))) << "same seed, same file";
  EXPECT_NE(read_text(file("a.mtx")), read_text(file("c.mtx"))) << "the seed must matter";
}

TEST_F(Cli, TrainWritesReportLogCheckpointLatentsAndReconstruction) {
  const Result& r = trained();
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(r.err, "") << "--quiet prints nothing on stderr";
  const std::vector<std::string> out = lines_of(r.out);
  ASSERT_EQ(out.size(), 1u) << "--json prints one line: " << r.out;
  EXPECT_EQ(out[0].front(), '{');
  EXPECT_EQ(out[0].back(), '}');
  for (const char* field :
       {"\"backend\": \"cpu\"", "\"epochs\": 2", "\"median_samples_per_second\": ",
        "\"train_loss\": ", "\"validation_loss\": ", "\"validation\": {\"rows\": 30,",
        "\"nonzero_exact_fraction\": ", "\"support_recall\": "})
    EXPECT_TRUE(contains(out[0], field)) << field << " missing from " << out[0];

  const std::vector<std::string> log = lines_of(read_text(file("log.jsonl")));
  ASSERT_EQ(log.size(), 2u) << "one log line per epoch";
  EXPECT_TRUE(contains(log[0], "{\"epoch\": 1, \"steps\": 2, \"train_loss\": ")) << log[0];
  EXPECT_TRUE(contains(log[1], "{\"epoch\": 2, ")) << log[1];
  EXPECT_TRUE(contains(log[1], "\"learning_rate\": 0.001, \"skipped_steps\": 0}")) << log[1];

  const Checkpoint checkpoint = load_checkpoint(file("m.ckpt"));
  EXPECT_EQ(checkpoint.state.epoch, 2);
  EXPECT_EQ(checkpoint.config.model.input_dim, 512);
  EXPECT_EQ(checkpoint.config.model.hidden, std::vector<std::int64_t>{32});
  EXPECT_EQ(checkpoint.config.model.latent, 8);
  // The defaults sae train takes beyond the library's: log(1 + count) input, clipping at norm 1.
  EXPECT_EQ(checkpoint.config.train.input_transform, InputTransform::log1p);
  EXPECT_EQ(checkpoint.config.train.optimizer.max_grad_norm, 1.0f);
  EXPECT_TRUE(names_file(checkpoint.config.data_source, file("x.mtx")));

  const HostDense latents = read_npy(file("z.npy"), NpyValues::finite);
  EXPECT_EQ(latents.rows, 300);
  EXPECT_EQ(latents.cols, 8);
  const HostCsr reconstruction = read_matrix_market(file("r.mtx"));
  EXPECT_EQ(reconstruction.rows, 300);
  EXPECT_EQ(reconstruction.cols, 512);

  // The files hold what the checkpoint's model computes.
  const auto backend = make_backend(BackendChoice::cpu);
  TrainedModel model(*backend, checkpoint.config, checkpoint.state.parameters);
  const HostCsr x = read_matrix_market(file("x.mtx"));
  expect_same(latents, model.encode(x), "z.npy vs the checkpoint's codes");
  expect_same(reconstruction, round_to_counts(model.reconstruct(x)), "r.mtx vs the checkpoint");
}

TEST_F(Cli, EncodeDecodeAndEvalUseTheCheckpoint) {
  ASSERT_TRUE(succeeded(trained()));
  ASSERT_TRUE(succeeded(sae("encode --model m.ckpt --data x.mtx --out z2.npy --backend cpu")));
  expect_same(read_npy(file("z2.npy"), NpyValues::finite),
              read_npy(file("z.npy"), NpyValues::finite), "encode vs train --latents");

  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --latents z.npy --out d1.npy --backend cpu")));
  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --data x.mtx --out d2.npy --backend cpu")));
  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --data x.mtx --out d3.mtx --backend cpu")));
  const HostDense d1 = read_npy(file("d1.npy"), NpyValues::finite);
  EXPECT_EQ(d1.rows, 300);
  EXPECT_EQ(d1.cols, 512);
  expect_same(d1, read_npy(file("d2.npy"), NpyValues::finite), "decode from codes vs from counts");
  expect_same(read_matrix_market(file("d3.mtx")), read_matrix_market(file("r.mtx")),
              "decode .mtx vs train --reconstruction");

  // Without --data, eval rebuilds the training run's validation rows: the numbers train printed.
  const Result validation = sae("eval --model m.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(validation));
  EXPECT_EQ(validation.out, json_object(trained().out, "validation") + "\n");
  const Result all = sae("eval --model m.ckpt --data x.mtx --json --backend cpu");
  ASSERT_TRUE(succeeded(all));
  EXPECT_TRUE(contains(all.out,
                       "{\"rows\": 300, \"entries\": 153600, \"decode\": \"round\", "
                       "\"mse\": "))
      << all.out;
  const Result table = sae("eval --model m.ckpt --data x.mtx --backend cpu --batch 7");
  ASSERT_TRUE(succeeded(table));
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 17u) << "title and 16 metrics (no nll for mse): " << table.out;
  EXPECT_EQ(lines[0], "x.mtx (300 rows), counts decoded by round:");
  EXPECT_TRUE(contains(lines[1], "exact-entry F1")) << "the headline comes first: " << table.out;
}

// Sparse latents from the command line: topk:K codes keep at most K latents a row, batchtopk:K
// codes use its threshold (rows keep unequal counts), and encode reproduces train --latents;
// the JSON reports the code's L0.
TEST_F(Cli, SparseLatentsTrainAndEncode) {
  ensure_data();
  for (const std::string act : {"topk:3", "batchtopk:3"}) {
    SCOPED_TRACE(act);
    const Result train =
        sae("train --data x.mtx --epochs 2 --hidden 32 --latent 8 --latent-act " + act +
            " -o s.ckpt --latents zs.npy --json --quiet --force --backend cpu");
    ASSERT_TRUE(succeeded(train)) << train.err;
    EXPECT_TRUE(contains(json_object(train.out, "validation"), "\"latent_l0\": ")) << train.out;
    ASSERT_TRUE(succeeded(sae("encode --model s.ckpt --data x.mtx --out zs2.npy --backend cpu")));
    const HostDense codes = read_npy(file("zs.npy"), NpyValues::finite);
    expect_same(read_npy(file("zs2.npy"), NpyValues::finite), codes, "encode vs train --latents");
    std::vector<std::int64_t> per_row(static_cast<std::size_t>(codes.rows), 0);
    for (std::int64_t i = 0; i < codes.rows * codes.cols; ++i)
      per_row[static_cast<std::size_t>(i / codes.cols)] +=
          codes.values[static_cast<std::size_t>(i)] != 0.0f;
    const auto [fewest, most] = std::minmax_element(per_row.begin(), per_row.end());
    if (act == "topk:3")
      EXPECT_LE(*most, 3);
    else
      EXPECT_NE(*fewest, *most);
  }
}

// --aux-k: stored in the checkpoint and shown in the JSON; without a TopK or BatchTopK latent,
// refused in one line before anything is read.
TEST_F(Cli, AuxKIsStoredShownAndNeedsASelection) {
  ensure_data();
  const Result train =
      sae("train --data x.mtx --epochs 2 --hidden 32 --latent 8 --latent-act topk:3 --aux-k 2 "
          "--aux-weight 0.25 --aux-dead-steps 3 -o aux.ckpt --json --quiet --force "
          "--backend cpu");
  ASSERT_TRUE(succeeded(train)) << train.err;
  EXPECT_TRUE(contains(train.out, "\"auxk\": {\"k\": 2, \"weight\": 0.25, \"dead_steps\": 3}"))
      << train.out;
  const Checkpoint c = load_checkpoint(file("aux.ckpt"));
  EXPECT_EQ(c.config.train.aux_k, 2);
  EXPECT_EQ(c.config.train.aux_weight, 0.25f);
  EXPECT_EQ(c.config.train.aux_dead_steps, 3);
  EXPECT_EQ(c.state.latent_dead_steps.size(), 8u) << "AuxK's counters, one a latent";
  const Result refused = sae("train --data missing.mtx --aux-k 2 -o '' --backend cpu");
  EXPECT_FALSE(succeeded(refused));
  EXPECT_EQ(refused.err,
            "sae: error: AuxK (--aux-k) revives the dead latents of a TopK or BatchTopK code: it "
            "needs --latent-act topk:K or batchtopk:K\n");
}

// --decoder-norm: stored in the checkpoint and shown in the JSON and the text summary; with tied
// weights or the PCA anchor's linear skip, refused in one line before anything is read.
TEST_F(Cli, DecoderNormIsStoredShownAndRefusedWhereItMeansNothing) {
  ensure_data();
  const Result train =
      sae("train --data x.mtx --epochs 2 --hidden 32 --latent 8 --decoder-norm "
          "-o norm.ckpt --json --quiet --force --backend cpu");
  ASSERT_TRUE(succeeded(train)) << train.err;
  EXPECT_TRUE(contains(train.out, "\"decoder_norm\": true")) << train.out;
  EXPECT_TRUE(load_checkpoint(file("norm.ckpt")).config.train.decoder_norm);
  const Result text =
      sae("train --data x.mtx --epochs 1 --hidden 32 --latent 8 --decoder-norm "
          "-o '' --quiet --backend cpu");
  ASSERT_TRUE(succeeded(text)) << text.err;
  EXPECT_TRUE(contains(text.out, "decoder     unit-norm columns (--decoder-norm)\n")) << text.out;
  const Result tied = sae("train --data missing.mtx --tied --decoder-norm -o '' --backend cpu");
  EXPECT_FALSE(succeeded(tied));
  EXPECT_EQ(tied.err,
            "sae: error: decoder normalisation (--decoder-norm) rescales the decoder's own "
            "weights; tied weights (--tied) are the encoder's: drop one\n");
  const Result anchored =
      sae("train --data missing.mtx --pca-anchor --decoder-norm -o '' --backend cpu");
  EXPECT_FALSE(succeeded(anchored));
  EXPECT_EQ(anchored.err,
            "sae: error: decoder normalisation (--decoder-norm) bounds the latents' decoder "
            "weights, but the PCA anchor's linear skip (--pca-anchor) carries the latents to the "
            "output unbounded: drop one\n");
}

// --refine-steps: sae train stores it, reports it and measures with it; the commands that use a
// model read it from the checkpoint, and their own --refine-steps replaces it for the run; what
// cannot be refined, or a count out of range, fails in one line before any work.
TEST_F(Cli, RefinementIsStoredShownAndReplaceable) {
  ensure_data();
  const Result train = sae(
      "train --data x.mtx --epochs 2 --hidden 32 --latent 8 --latent-act identity --loss poisson "
      "--refine-steps 20 -o refined.ckpt --json --quiet --force --backend cpu");
  ASSERT_TRUE(succeeded(train)) << train.err;
  EXPECT_TRUE(contains(train.out, "\"latent_refinement\": {\"steps\": 20, \"rate\": 0.03}"))
      << train.out;
  EXPECT_EQ(load_checkpoint(file("refined.ckpt")).config.latent_refinement.steps, 20);

  const auto f1 = [&](const std::string& extra) {
    const Result eval = sae("eval --model refined.ckpt --json --quiet --backend cpu" + extra);
    EXPECT_TRUE(succeeded(eval)) << eval.err;
    return eval.out;
  };
  const std::string stored = f1("");
  EXPECT_EQ(stored, f1(" --refine-steps 20")) << "the stored refinement is the default";
  EXPECT_NE(stored, f1(" --refine-steps 0")) << "0 steps measures the encoder's codes";
  const Result encoded =
      sae("encode --model refined.ckpt --data x.mtx -o codes.npy --refine-steps 0 --backend cpu");
  EXPECT_TRUE(succeeded(encoded)) << encoded.err;

  const Result negative = sae("eval --model refined.ckpt --refine-steps -1 --backend cpu");
  EXPECT_FALSE(succeeded(negative));
  EXPECT_EQ(negative.err,
            "sae: error: sae eval: --refine-steps/--refine-rate: -1 refinement steps; from 0 to "
            "10000\n");
  const Result quantised =
      sae("train --data missing.mtx --rate-lambda 1 --refine-steps 5 -o '' --backend cpu");
  EXPECT_FALSE(succeeded(quantised));
  EXPECT_EQ(quantised.err,
            "sae: error: model: refining latent codes (latent_refinement) needs real-valued "
            "codes; this model's are quantised under a latent prior (--rate-lambda)\n");
}

// A support head's threshold suits the codes it was chosen on: where eval or decode refine the
// codes otherwise than the checkpoint, the threshold is chosen again on the checkpoint's validation
// rows, as sae train chooses it for a model that stores that refinement; without those rows, the
// stored one is kept and a notice says so.
TEST_F(Cli, OtherRefinementChoosesTheSupportThresholdAgain) {
  ensure_data();
  const std::string train =
      "train --data x.mtx --epochs 3 --select loss --hidden 32 --latent 8 --latent-act identity "
      "--loss hurdle_nb --decode mode --quiet --force --backend cpu --no-pca";
  const Result plain = sae(train + " -o plain.ckpt");
  ASSERT_TRUE(succeeded(plain)) << plain.err;
  const Result refined = sae(train + " --refine-steps 20 --refine-rate 0.1 -o refined20.ckpt");
  ASSERT_TRUE(succeeded(refined)) << refined.err;
  // The refined codes' threshold differs from the encoder's: keeping the stored one would show.
  const double refined_threshold = load_checkpoint(file("refined20.ckpt")).config.hurdle_threshold;
  ASSERT_NE(refined_threshold, load_checkpoint(file("plain.ckpt")).config.hurdle_threshold);

  const Result stored = sae("eval --model refined20.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(stored)) << stored.err;
  const Result replaced =
      sae("eval --model plain.ckpt --refine-steps 20 --refine-rate 0.1 --json --backend cpu");
  ASSERT_TRUE(succeeded(replaced)) << replaced.err;
  EXPECT_EQ(replaced.out, stored.out)
      << "the same parameters, refined alike, with the threshold sae train chose for them";
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%g", refined_threshold);
  EXPECT_TRUE(contains(
      replaced.err, std::string("sae eval: support threshold ") + threshold + " for these codes"))
      << replaced.err;
  EXPECT_TRUE(contains(replaced.err, "chosen for the encoder's codes)")) << replaced.err;
  const Result same = sae("eval --model refined20.ckpt --refine-steps 20 --json --backend cpu");
  EXPECT_EQ(same.err, "") << "the stored refinement needs no other threshold";

  // Without the rows it trained on, the stored threshold stays, and a notice says so.
  fs::copy_file(file("x.mtx"), file("gone.mtx"), fs::copy_options::overwrite_existing);
  const Result gone =
      sae("train --data gone.mtx --epochs 1 --hidden 32 --latent 8 --latent-act identity "
          "--loss hurdle_nb --decode mode --quiet --force --backend cpu --no-pca -o gone.ckpt");
  ASSERT_TRUE(succeeded(gone)) << gone.err;
  fs::remove(file("gone.mtx"));
  const Result kept =
      sae("decode --model gone.ckpt --data x.mtx --refine-steps 5 -o gone-decoded.mtx "
          "--backend cpu");
  ASSERT_TRUE(succeeded(kept)) << kept.err;
  EXPECT_TRUE(contains(kept.err, "sae decode: keeping the checkpoint's support threshold "))
      << kept.err;
  EXPECT_FALSE(contains(kept.err, "--data")) << "it was given: the advice would mislead";
  const Result unmeasured = sae("eval --model gone.ckpt --refine-steps 5 --backend cpu");
  EXPECT_EQ(unmeasured.exit_code, 1);
  EXPECT_TRUE(contains(unmeasured.err, ": give the file with --data\n")) << unmeasured.err;
  EXPECT_EQ(std::count(unmeasured.err.begin(), unmeasured.err.end(), '\n'), 1) << unmeasured.err;
  const Result quiet =
      sae("decode --model gone.ckpt --data x.mtx --refine-steps 5 -o gone-quiet.mtx --quiet "
          "--backend cpu");
  EXPECT_EQ(quiet.err, "");
}

// The refinement's usage errors come in one line, before the backend opens (so the same on a
// machine without a GPU): a rate for no steps, a rate out of range, codes that cannot be refined.
TEST_F(Cli, RefinementUsageErrorsComeFirst) {
  ASSERT_TRUE(succeeded(trained())) << trained().err;
  const auto error = [&](const std::string& args) {
    const Result r = sae(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    return r.err;
  };
  EXPECT_EQ(error("eval --model m.ckpt --refine-rate 0.1 --backend cuda"),
            "sae: error: sae eval: --refine-rate sets the rate of refinement steps, and there are "
            "none: give --refine-steps N\n");
  EXPECT_EQ(error("train --data x.mtx --refine-steps 0 --refine-rate 0.1 -o '' --backend cuda"),
            "sae: error: sae train: --refine-rate sets the rate of refinement steps, and "
            "--refine-steps is 0\n");
  EXPECT_EQ(error("encode --model m.ckpt --data x.mtx -o c.npy --refine-steps 5 --refine-rate "
                  "1e30 --backend cuda"),
            "sae: error: sae encode: --refine-steps/--refine-rate: refinement rate 1e+30 is not "
            "in (0, 10]\n");
  EXPECT_EQ(error("decode --model m.ckpt --latents c.npy -o d.mtx --refine-steps 5 --backend cuda"),
            "sae: error: sae decode: --refine-steps and --refine-rate refine the codes of --data; "
            "codes given by --latents are decoded as they are (refine them in sae encode)\n");
  // --auto's trial takes a rate alone.
  const Result auto_rate =
      sae("train --auto --data x.mtx --epochs 1 --hidden 16 --latent 4 --refine-rate 0.05 -o '' "
          "--json --quiet --backend cpu --no-pca");
  ASSERT_TRUE(succeeded(auto_rate)) << auto_rate.err;
  EXPECT_TRUE(contains(auto_rate.out, "\"steps\": 40, \"rate\": 0.05")) << auto_rate.out;
}

// sae train --auto: every default recipe in the JSON, the best written as the checkpoint with its
// recipe's decode, whose model, evaluated by sae eval by that decode, has the F1 it was chosen
// by; the flags the search chooses itself are refused in one line.
TEST_F(Cli, AutoSearchWritesTheBestRecipeAsTheCheckpoint) {
  ensure_data();
  const Result r =
      sae("train --auto --data x.mtx --epochs 2 --hidden 16 --latent 4 "
          "-o auto.ckpt --json --quiet --backend cpu");
  ASSERT_TRUE(succeeded(r)) << r.err;
  const Json json = Json::parse(r.out, "sae train --auto");
  ASSERT_EQ(json.at("recipes").items().size(), default_recipes().size());
  const Json& best = json.at("recipes").items()[static_cast<std::size_t>(json.at("best").as_int())];
  EXPECT_EQ(best.at("epochs").as_int(), 2);
  const Checkpoint c = load_checkpoint(file("auto.ckpt"));
  EXPECT_EQ(loss_name(c.config.train.loss), best.at("loss").as_string());
  EXPECT_EQ(activation_name(c.config.model.latent_activation),
            best.at("latent_activation").as_string());
  ASSERT_TRUE(c.config.decode.has_value()) << "the checkpoint stores the recipe's decode";
  EXPECT_EQ(decode_mode_name(*c.config.decode), best.at("decode").as_string());
  const Result eval = sae("eval --model auto.ckpt --data x.mtx --json --backend cpu --decode " +
                          best.at("decode").as_string());
  ASSERT_TRUE(succeeded(eval)) << eval.err;
  const Result stored = sae("eval --model auto.ckpt --data x.mtx --json --backend cpu");
  ASSERT_TRUE(succeeded(stored)) << stored.err;
  EXPECT_EQ(stored.out, eval.out) << "eval decodes by the stored decode";
  EXPECT_TRUE(contains(r.out, "\"pca\": {\"components\": 4")) << r.out;
  // eval reads every row of x.mtx; the search's F1 is on its validation rows: the same model
  // (bit for bit on cpu) measured on the rows the checkpoint's split holds out.
  const Result held_out =
      sae("train --epochs 0 --data x.mtx --resume auto.ckpt --json --quiet --backend cpu "
          "--no-pca -o auto-again.ckpt --decode " +
          best.at("decode").as_string());
  ASSERT_TRUE(succeeded(held_out)) << held_out.err;
  const std::string validation = json_object(held_out.out, "validation");
  const std::size_t at = validation.find("\"exact_f1\": ");
  ASSERT_NE(at, std::string::npos) << held_out.out;
  // The best model's F1 with refined codes, which the checkpoint keeps where it is higher.
  ASSERT_TRUE(json.contains("refinement")) << r.out;
  const Json& refinement = json.at("refinement");
  EXPECT_EQ(refinement.at("steps").as_int(), kAutoRefineSteps);
  const bool kept = refinement.at("kept").as_bool();
  EXPECT_EQ(kept, refinement.at("exact_f1").as_double() > best.at("exact_f1").as_double());
  EXPECT_EQ(c.config.latent_refinement.steps, kept ? kAutoRefineSteps : 0);
  EXPECT_NEAR(std::stod(validation.substr(at + 12)),
              (kept ? refinement : best).at("exact_f1").as_double(), 1e-6);

  const Result unrefined =
      sae("train --auto --data x.mtx --epochs 1 --hidden 16 --latent 4 --refine-steps 0 "
          "-o '' --json --quiet --backend cpu --no-pca");
  ASSERT_TRUE(succeeded(unrefined)) << unrefined.err;
  EXPECT_FALSE(contains(unrefined.out, "refinement")) << "--refine-steps 0 tries none";

  const Result refused = sae("train --auto --loss hurdle --data x.mtx --backend cpu");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "sae: error: sae train: --auto chooses --loss; drop it\n");
}

// sae train --auto --auto-rows: on more rows, the recipes are ranked on a sample of that many and
// the best then trains on every row; the text and the JSON say so.
TEST_F(Cli, AutoSearchRanksOnASampleOfRows) {
  ensure_data();
  const std::string search =
      "train --auto --data x.mtx --epochs 2 --hidden 16 --latent 4 --auto-rows 100 "
      "--refine-steps 0 --no-pca --backend cpu";
  const Result r = sae(search + " -o sampled.ckpt --json --quiet");
  ASSERT_TRUE(succeeded(r)) << r.err;
  const Json json = Json::parse(r.out, "sae train --auto --auto-rows");
  EXPECT_EQ(json.at("search_rows").as_int(), 100);
  EXPECT_EQ(json.at("search_validation_rows").as_int(), 10);
  EXPECT_EQ(json.at("validation_rows").as_int(), 30);
  ASSERT_TRUE(json.contains("all_rows")) << r.out;
  EXPECT_EQ(json.at("all_rows").at("epochs").as_int(), 2);
  // The checkpoint is the model trained on every row, resumable on them, with the F1 reported.
  const Json& best = json.at("recipes").items()[static_cast<std::size_t>(json.at("best").as_int())];
  const Result held_out =
      sae("train --epochs 0 --data x.mtx --resume sampled.ckpt --json --quiet --backend cpu "
          "--no-pca -o sampled-again.ckpt --decode " +
          best.at("decode").as_string());
  ASSERT_TRUE(succeeded(held_out)) << held_out.err;
  const std::string validation = json_object(held_out.out, "validation");
  const std::size_t at = validation.find("\"exact_f1\": ");
  ASSERT_NE(at, std::string::npos) << held_out.out;
  EXPECT_NEAR(std::stod(validation.substr(at + 12)), json.at("all_rows").at("exact_f1").as_double(),
              1e-6);

  const Result text = sae(search + " -o ''");
  ASSERT_TRUE(succeeded(text)) << text.err;
  EXPECT_TRUE(contains(text.err,
                       "auto: the recipes are ranked on a random 100 of the 300 rows "
                       "(--auto-rows) within half the budget; the best then trains on "
                       "every row\n"))
      << text.err;
  EXPECT_TRUE(contains(text.out, "on the validation rows of a sample of 100 rows (10):"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "best, trained on every row for 2 more epochs: exact-entry F1 "))
      << text.out;

  const Result whole =
      sae("train --auto --data x.mtx --epochs 1 --hidden 16 --latent 4 "
          "--auto-rows 0 --refine-steps 0 --no-pca -o '' --json --quiet "
          "--backend cpu");
  ASSERT_TRUE(succeeded(whole)) << whole.err;
  EXPECT_FALSE(contains(whole.out, "all_rows")) << "0: every row ranks the recipes";
  EXPECT_TRUE(contains(whole.out, "\"search_rows\": 300")) << whole.out;
}

// sae compare names a loss that failed in its table and goes on; when none trains it ends with
// one error line and a non-zero exit.
TEST_F(Cli, CompareNamesAFailedLossAndFailsWhenNoneTrains) {
  ensure_data();
  const Result r = sae("compare --data x.mtx --losses poisson,mse --epochs 2 --hidden 16 "
                       "--latent 4 --lr 1e6 --input-transform none --quiet --backend cpu");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "poisson            mean   failed: training diverged: ")) << r.out;
  EXPECT_TRUE(contains(r.out, "mse                round  failed: training diverged: ")) << r.out;
  EXPECT_EQ(r.err, "sae: error: sae compare: no loss trained (the table names each one's "
                   "failure)\n");
}

TEST_F(Cli, EveryInputFormatTrainsToTheSameModel) {
  ensure_data();
  const HostCsr x = read_matrix_market(file("x.mtx"));
  {  // .mtx.gz: the same text, gzipped
    const std::string text = read_text(file("x.mtx"));
    gzFile gz = gzopen(file("x.mtx.gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())),
              static_cast<int>(text.size()));
    ASSERT_EQ(gzclose(gz), Z_OK);
  }
  write_npy(file("x.npy"), to_dense(x));
  {  // .csv with a header line
    const HostDense dense = to_dense(x);
    std::ofstream csv(file("x.csv"));
    for (std::int64_t c = 0; c < dense.cols; ++c) csv << (c ? "," : "") << "gene" << c;
    csv << "\n";
    for (std::int64_t r = 0; r < dense.rows; ++r) {
      for (std::int64_t c = 0; c < dense.cols; ++c)
        csv << (c ? "," : "") << dense.values[r * dense.cols + c];
      csv << "\n";
    }
  }
  {  // .npz as scipy.sparse.save_npz writes it (deflated, zip64 members): csr, int32 indices
    const auto npy = [](const std::string& descr, const std::string& data, std::size_t count) {
      return test::npy_file(test::npy_dict(descr, "(" + std::to_string(count) + ",)"), data);
    };
    const std::vector<std::int32_t> indices(x.col_indices.begin(), x.col_indices.end());
    const std::vector<std::int32_t> indptr(x.row_offsets.begin(), x.row_offsets.end());
    const std::string archive = test::zip_archive(
        {{"indices.npy", npy("<i4", test::little_endian(indices), indices.size())},
         {"indptr.npy", npy("<i4", test::little_endian(indptr), indptr.size())},
         {"format.npy", test::npy_file(test::npy_dict("|S3", "()"), "csr")},
         {"shape.npy",
          npy("<i8", test::little_endian(std::vector<std::int64_t>{x.rows, x.cols}), 2)},
         {"data.npy", npy("<f4", test::little_endian(x.values), x.values.size())}},
        true, true);
    std::ofstream(file("x.npz"), std::ios::binary) << archive;
  }
  {  // .h5ad as anndata writes it: X a csr_matrix group, here int64 indices and float64 data
    const std::vector<double> data(x.values.begin(), x.values.end());
    const std::vector<std::int64_t> indices(x.col_indices.begin(), x.col_indices.end());
    test::write_sparse_x(file("x.h5ad"), "csr_matrix", {x.rows, x.cols}, data, indices,
                         x.row_offsets);
  }
  std::string first_validation;
  for (const std::string name : {"x.mtx", "x.mtx.gz", "x.npz", "x.h5ad", "x.npy", "x.csv"}) {
    SCOPED_TRACE(name);
    const Result r = sae("train --data " + name + " --epochs 1 --hidden 16 --latent 4 --json " +
                         "--quiet --backend cpu -o f.ckpt");
    ASSERT_TRUE(succeeded(r));
    // The same counts, so the same split, training and metrics, whatever the file.
    const std::string validation = json_object(r.out, "validation");
    ASSERT_FALSE(validation.empty()) << r.out;
    if (first_validation.empty()) first_validation = validation;
    EXPECT_EQ(validation, first_validation);
    EXPECT_TRUE(names_file(load_checkpoint(file("f.ckpt")).config.data_source, file(name)));
  }
}

// The values of a CSV that sae wrote (no header), parsed here rather than by read_csv, which
// takes counts only: codes are negative too.
HostDense csv_values(const std::string& path) {
  HostDense dense;
  for (const std::string& line : lines_of(read_text(path))) {
    std::istringstream fields(line);
    std::int64_t cols = 0;
    for (std::string field; std::getline(fields, field, ','); ++cols)
      dense.values.push_back(std::strtof(field.c_str(), nullptr));
    dense.cols = cols;
    ++dense.rows;
  }
  return dense;
}

// x transposed: its columns as rows.
HostCsr transposed(const HostCsr& x) {
  const HostDense dense = to_dense(x);
  HostDense result;
  result.rows = dense.cols;
  result.cols = dense.rows;
  for (std::int64_t c = 0; c < dense.cols; ++c)
    for (std::int64_t r = 0; r < dense.rows; ++r)
      result.values.push_back(dense.values[static_cast<std::size_t>(r * dense.cols + c)]);
  return to_csr(result);
}

// Every command that writes a matrix writes the format its extension names: .mtx, .npy or .csv.
TEST_F(Cli, OutputsTakeTheFormatTheirExtensionNames) {
  ASSERT_TRUE(succeeded(trained()));
  const HostCsr x = read_matrix_market(file("x.mtx"));
  for (const std::string name : {"g.npy", "g.csv"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(succeeded(sae("gen --rows 300 --out " + name)));
    expect_same(to_csr(read_matrix(file(name)).dense), x, "gen as .npy or .csv vs .mtx");
  }
  // -o is --out for every command whose output is --out.
  ASSERT_TRUE(succeeded(sae("gen --rows 300 -o g.npz")));
  expect_same(read_matrix(file("g.npz")).csr, x, "gen as .npz (scipy.sparse csr) vs .mtx");
  // A dense .npz holds the .npy that write_npy writes, stored as its one member.
  ASSERT_TRUE(succeeded(sae("encode --model m.ckpt --data x.mtx -o z.npz --backend cpu")));
  EXPECT_NE(read_text(file("z.npz")).find(read_text(file("z.npy"))), std::string::npos)
      << "encode .npz holds train --latents .npy";
  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --latents z.npy -o d.npz --backend cpu")));
  expect_same(read_matrix(file("d.npz")).csr, read_matrix_market(file("r.mtx")),
              "decode .npz vs train --reconstruction .mtx");

  ASSERT_TRUE(succeeded(sae("encode --model m.ckpt --data x.mtx --out z.csv --backend cpu")));
  expect_same(csv_values(file("z.csv")), read_npy(file("z.npy"), NpyValues::finite),
              "encode .csv vs train --latents .npy");
  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --latents z.npy --out d.csv --backend cpu")));
  expect_same(to_csr(read_csv(file("d.csv"))), read_matrix_market(file("r.mtx")),
              "decode .csv vs train --reconstruction .mtx");

  ASSERT_TRUE(
      succeeded(sae("train --data x.mtx --epochs 1 --hidden 16 --latent 4 --quiet "
                    "--backend cpu -o c.ckpt --latents cz.csv "
                    "--reconstruction cr.csv")));
  ASSERT_TRUE(succeeded(sae("encode --model c.ckpt --data x.mtx --out cz.npy --backend cpu")));
  expect_same(csv_values(file("cz.csv")), read_npy(file("cz.npy"), NpyValues::finite),
              "train --latents .csv vs encode");
  ASSERT_TRUE(succeeded(sae("decode --model c.ckpt --data x.mtx --out cr.mtx --backend cpu")));
  expect_same(to_csr(read_csv(file("cr.csv"))), read_matrix_market(file("cr.mtx")),
              "train --reconstruction .csv vs decode");

  ASSERT_TRUE(
      succeeded(sae("pca --data x.mtx --k 4 --backend cpu -o pc.ckpt --quiet "
                    "--latents pz.csv --reconstruction pr.csv")));
  ASSERT_TRUE(succeeded(sae("encode --model pc.ckpt --data x.mtx --out pz.npy --backend cpu")));
  expect_same(csv_values(file("pz.csv")), read_npy(file("pz.npy"), NpyValues::finite),
              "pca --latents .csv vs encode");
  ASSERT_TRUE(succeeded(sae("decode --model pc.ckpt --latents pz.npy --out pr.mtx --backend cpu")));
  expect_same(to_csr(read_csv(file("pr.csv"))), read_matrix_market(file("pr.mtx")),
              "pca --reconstruction .csv vs decode");
}

// .h5ad out of every command that writes counts or codes, read back as the other formats hold
// them; decompress writes every count format; a bad .h5ad is one error line and exit code 1.
TEST_F(Cli, H5adFilesInAndOut) {
  ASSERT_TRUE(succeeded(trained()));
  const HostCsr x = read_matrix_market(file("x.mtx"));
  ASSERT_TRUE(succeeded(sae("gen --rows 300 -o g.h5ad")));
  expect_same(read_matrix(file("g.h5ad")).csr, x, "gen as .h5ad vs .mtx");
  ASSERT_TRUE(succeeded(sae("decode --model m.ckpt --latents z.npy -o d.h5ad --backend cpu")));
  expect_same(read_matrix(file("d.h5ad")).csr, read_matrix_market(file("r.mtx")),
              "decode .h5ad vs train --reconstruction .mtx");
  ASSERT_TRUE(succeeded(sae("encode --model m.ckpt --data g.h5ad -o z.h5ad --backend cpu")));
  // The codes sit in obsm, not in X: as counts, the file has none.
  const Result codes_as_counts = sae("encode --model m.ckpt --data z.h5ad -o zz.npy --backend cpu");
  EXPECT_EQ(codes_as_counts.exit_code, 1);
  EXPECT_EQ(codes_as_counts.err,
            "sae: error: z.h5ad: no X (an AnnData file holds its counts in X; this one has "
            "none)\n");
  ASSERT_TRUE(
      succeeded(sae("pca --data g.h5ad --k 4 --backend cpu -o hp.ckpt --quiet "
                    "--latents hz.h5ad --reconstruction hr.h5ad")));
  ASSERT_TRUE(succeeded(sae("decode --model hp.ckpt --data x.mtx --out hr.mtx --backend cpu")));
  expect_same(read_matrix(file("hr.h5ad")).csr, read_matrix_market(file("hr.mtx")),
              "pca --reconstruction .h5ad vs decode");

  ASSERT_TRUE(succeeded(sae("compress --codec order0 --data g.h5ad -o h.sae")));
  for (const std::string name : {"h.h5ad", "h.npz", "h.npy", "h.csv", "h.mtx"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(succeeded(sae("decompress --in h.sae -o " + name)));
    const LoadedMatrix back = read_matrix(file(name));
    expect_same(back.sparse ? back.csr : to_csr(back.dense), x, "decompressed");
  }

  test::write_sparse_x(file("bad.h5ad"), "csr_matrix", {2, 3}, std::vector<float>{2, -1, 3},
                       std::vector<std::int32_t>{1, 0, 2}, std::vector<std::int32_t>{0, 1, 3});
  const Result bad = sae("train --data bad.h5ad --epochs 1 --backend cpu -o ''");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "sae: error: bad.h5ad: X/data: element 1: negative count -1\n");
  std::ofstream(file("cut.h5ad"), std::ios::binary)
      << read_text(file("g.h5ad")).substr(0, fs::file_size(file("g.h5ad")) / 2);
  const Result cut = sae("encode --model m.ckpt --data cut.h5ad -o cut-codes.npy --backend cpu");
  EXPECT_EQ(cut.exit_code, 1);
  EXPECT_TRUE(
      contains(cut.err, "sae: error: cut.h5ad: not an HDF5 file, or truncated or corrupt ("))
      << cut.err;
  EXPECT_EQ(lines_of(cut.err).size(), 1u) << cut.err;
  EXPECT_FALSE(fs::exists(file("cut-codes.npy")));
}

// An output whose extension names no format the command writes fails at once, before the model
// or the data is read (here neither exists), in one line, and nothing is written.
TEST_F(Cli, AnOutputExtensionNoFormatMatchesIsRefusedBeforeAnyWork) {
  const std::pair<std::string, std::string> cases[] = {
      {"gen --rows 10 --out out.loom",
       "out.loom: sae gen --out writes .mtx, .npy, .npz, .csv or .h5ad, not '.loom'"},
      {"gen --rows 10 --out out.mtx.gz",
       "out.mtx.gz: sae gen --out writes .mtx, .npy, .npz, .csv or .h5ad, not '.mtx.gz'"},
      {"encode --model missing.ckpt --data missing.mtx --out out.mtx --backend cpu",
       "out.mtx: sae encode --out writes .npy, .npz, .csv or .h5ad, not '.mtx'"},
      {"decode --model missing.ckpt --latents missing.npy --out out.loom --backend cpu",
       "out.loom: sae decode --out writes .mtx, .npy, .npz, .csv or .h5ad, not '.loom'"},
      {"decode --model missing.ckpt --data missing.mtx --out out --backend cpu",
       "out: sae decode --out writes .mtx, .npy, .npz, .csv or .h5ad, and the name has no "
       "extension"},
      {"train --data missing.mtx --latents out.mtx --backend cpu",
       "out.mtx: sae train --latents writes .npy, .npz, .csv or .h5ad, not '.mtx'"},
      {"train --data missing.mtx --reconstruction out.txt --backend cpu",
       "out.txt: sae train --reconstruction writes .mtx, .npy, .npz, .csv or .h5ad, not '.txt'"},
      {"pca --data missing.mtx --latents out.mtx --backend cpu",
       "out.mtx: sae pca --latents writes .npy, .npz, .csv or .h5ad, not '.mtx'"},
      {"pca --data missing.mtx --reconstruction out.tsv --backend cpu",
       "out.tsv: sae pca --reconstruction writes .mtx, .npy, .npz, .csv or .h5ad, not '.tsv'"},
      {"decompress --in missing.sae --model missing.ckpt -o out.txt --backend cpu",
       "out.txt: sae decompress --out writes .mtx, .npy, .npz, .csv or .h5ad, not '.txt'"},
  };
  const fs::path empty = dir_ / "formats";
  fs::create_directories(empty);
  for (const auto& [args, message] : cases) {
    SCOPED_TRACE("sae " + args);
    const Result r = sae(args, "formats");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "sae: error: " + message + "\n");
    EXPECT_TRUE(fs::is_empty(empty)) << "a refused command wrote a file";
  }
}

// --transpose reads a features x rows file (10x Genomics' genes x cells) as rows x features: the
// same model, codes and metrics as the file written the usual way round; a checkpoint records it,
// so that eval without --data reads the file the same way.
TEST_F(Cli, TransposeReadsAFeaturesByRowsFileAsRows) {
  ASSERT_TRUE(succeeded(trained()));
  const HostCsr x = read_matrix_market(file("x.mtx"));
  write_matrix_market(file("xt.mtx"), transposed(x), true);
  write_npy(file("xt.npy"), to_dense(transposed(x)));
  const std::string train = " --epochs 1 --hidden 16 --latent 4 --json --quiet --backend cpu";
  const Result plain = sae("train --data x.mtx -o t0.ckpt" + train);
  ASSERT_TRUE(succeeded(plain));
  for (const std::string name : {"xt.mtx", "xt.npy"}) {
    SCOPED_TRACE(name);
    const Result flipped = sae("train --data " + name + " --transpose -o t1.ckpt" + train);
    ASSERT_TRUE(succeeded(flipped));
    EXPECT_EQ(json_object(flipped.out, "validation"), json_object(plain.out, "validation"));
    const Result eval = sae("eval --model t1.ckpt --json --backend cpu");
    ASSERT_TRUE(succeeded(eval));
    EXPECT_EQ(eval.out, json_object(plain.out, "validation") + "\n");
  }
  ASSERT_TRUE(succeeded(sae("encode --model t0.ckpt --data x.mtx --out t0.npy --backend cpu")));
  ASSERT_TRUE(succeeded(
      sae("encode --model t0.ckpt --data xt.mtx --transpose --out t1.npy --backend cpu")));
  expect_same(read_npy(file("t1.npy"), NpyValues::finite),
              read_npy(file("t0.npy"), NpyValues::finite), "encode --transpose");
  const Result pca = sae("pca --data xt.mtx --transpose --k 4 -o '' --quiet --backend cpu");
  ASSERT_TRUE(succeeded(pca));
  EXPECT_EQ(lines_of(pca.out)[0], "validation rows of xt.mtx (30 rows), counts decoded by round:");

  // compress --transpose stores the rows as the model reads them: the same file as of x.mtx.
  ASSERT_TRUE(succeeded(sae("compress --model t0.ckpt --data x.mtx -o c0.sae --backend cpu")));
  ASSERT_TRUE(
      succeeded(sae("compress --model t0.ckpt --data xt.mtx --transpose -o c1.sae --backend cpu")));
  EXPECT_EQ(read_text(file("c1.sae")), read_text(file("c0.sae")));

  const Result embedded = sae("train --transpose --rows 10 --backend cpu");
  EXPECT_EQ(embedded.exit_code, 1);
  EXPECT_EQ(embedded.err, "sae: error: --transpose reads --data: give it, or drop --transpose\n");
}

// A checkpoint records its data relative to itself as well: a directory holding both can be
// moved, and eval and --resume without --data find the data in its new place, read the way it was
// trained (--transpose); a checkpoint moved alone falls back on the absolute path. When neither
// exists, one line names both.
TEST_F(Cli, CheckpointFindsItsDataAfterTheirDirectoryMoves) {
  ensure_data();
  fs::remove_all(file("run"));
  fs::remove_all(file("moved"));
  fs::create_directories(file("run/data"));
  fs::copy_file(file("x.mtx"), file("run/data/x.mtx"));
  write_matrix_market(file("run/data/xt.mtx"), transposed(read_matrix_market(file("x.mtx"))), true);
  const std::string train = " --epochs 1 --hidden 16 --latent 4 --json --quiet --backend cpu";
  const Result plain = sae("train --data data/x.mtx -o m.ckpt" + train, "run");
  ASSERT_TRUE(succeeded(plain));
  const Result flipped = sae("train --data data/xt.mtx --transpose -o t.ckpt" + train, "run");
  ASSERT_TRUE(succeeded(flipped));
  EXPECT_EQ(load_checkpoint(file("run/m.ckpt")).config.data_source_relative_to_checkpoint,
            "data/x.mtx");
  EXPECT_EQ(load_checkpoint(file("run/t.ckpt")).config.data_source_relative_to_checkpoint,
            "transposed:data/xt.mtx");

  fs::rename(file("run"), file("moved"));
  for (const auto& [checkpoint, trained_by] :
       {std::pair{"m.ckpt", &plain}, std::pair{"t.ckpt", &flipped}}) {
    SCOPED_TRACE(checkpoint);
    const Result eval =
        sae(std::string("eval --model moved/") + checkpoint + " --json --backend cpu");
    ASSERT_TRUE(succeeded(eval));
    EXPECT_EQ(eval.out, json_object(trained_by->out, "validation") + "\n");
  }
  ASSERT_TRUE(
      succeeded(sae("train --resume moved/m.ckpt --epochs 2 -o moved/m.ckpt --quiet "
                    "--backend cpu")));
  const Checkpoint resumed = load_checkpoint(file("moved/m.ckpt"));
  EXPECT_EQ(resumed.state.epoch, 2);
  EXPECT_TRUE(names_file(resumed.config.data_source, file("moved/data/x.mtx")));

  fs::copy_file(file("moved/m.ckpt"), file("alone.ckpt"), fs::copy_options::overwrite_existing);
  const Result alone = sae("eval --model alone.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(alone));
  const Result beside = sae("eval --model moved/m.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(beside));
  EXPECT_EQ(alone.out, beside.out);

  fs::copy_file(file("moved/t.ckpt"), file("lost.ckpt"), fs::copy_options::overwrite_existing);
  const Result lost = sae("eval --model lost.ckpt --backend cpu");
  EXPECT_EQ(lost.exit_code, 1);
  EXPECT_EQ(lost.err, "sae: error: lost.ckpt: the data it was trained on is at neither " +
                          file("data/xt.mtx") + " nor " + file("run/data/xt.mtx") +
                          ": give the file with --data\n");
}

// Checkpoints written before the relative path was recorded name their data by its absolute path
// alone, and still evaluate without --data.
TEST_F(Cli, CheckpointWithAnAbsolutePathAloneStillEvaluates) {
  ASSERT_TRUE(succeeded(trained()));
  Checkpoint old = load_checkpoint(file("m.ckpt"));
  old.config.data_source_relative_to_checkpoint.clear();
  fs::create_directories(file("old"));
  save_checkpoint(file("old/m.ckpt"), old);
  const Result eval = sae("eval --model old/m.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval));
  EXPECT_EQ(eval.out, json_object(trained().out, "validation") + "\n");
}

// A checkpoint made by the library from rows in memory names no file (sparseae::fit leaves
// data_source empty unless told; a program may record its own label): eval without --data says
// so in one line, and evaluates the rows --data gives.
TEST_F(Cli, LibraryMadeCheckpointAsksForData) {
  ASSERT_TRUE(succeeded(trained()));
  for (const std::string label : {"", "in-memory"}) {
    SCOPED_TRACE(label);
    Checkpoint made = load_checkpoint(file("m.ckpt"));
    made.config.data_source = label;
    made.config.data_source_relative_to_checkpoint.clear();
    save_checkpoint(file("lib.ckpt"), made);
    const Result eval = sae("eval --model lib.ckpt --backend cpu");
    EXPECT_EQ(eval.exit_code, 1);
    EXPECT_EQ(eval.out, "");
    EXPECT_EQ(eval.err,
              "sae: error: lib.ckpt records no data file (it was made by the library): give the "
              "rows with --data\n");
    EXPECT_TRUE(succeeded(sae("eval --model lib.ckpt --data x.mtx --backend cpu")));
  }
}

TEST_F(Cli, ResumeContinuesTheRunExactly) {
  ensure_data();
  const std::string common = " --data x.mtx --hidden 16 --latent 4 --json --quiet --backend cpu";
  ASSERT_TRUE(succeeded(sae("train --epochs 3 -o straight.ckpt" + common)));
  ASSERT_TRUE(succeeded(sae("train --epochs 2 -o split.ckpt --metrics-log split.jsonl" + common)));
  const Result resumed =
      sae("train --resume split.ckpt --epochs 3 -o split.ckpt "
          "--metrics-log split.jsonl --data x.mtx --json --quiet --backend cpu");
  ASSERT_TRUE(succeeded(resumed));
  EXPECT_TRUE(contains(resumed.out, "\"epochs\": 3")) << resumed.out;
  const std::vector<std::string> log = lines_of(read_text(file("split.jsonl")));
  ASSERT_EQ(log.size(), 3u) << "a resumed run appends to the log";
  EXPECT_TRUE(contains(log[2], "{\"epoch\": 3, ")) << log[2];
  const Checkpoint straight = load_checkpoint(file("straight.ckpt"));
  const Checkpoint split = load_checkpoint(file("split.ckpt"));
  EXPECT_EQ(split.state.epoch, 3);
  EXPECT_TRUE(split.state.parameters == straight.state.parameters)
      << "2 + 1 resumed epochs differ from 3 in one run";
  EXPECT_EQ(run_config_to_json(split.config), run_config_to_json(straight.config));

  // A checkpoint for 512 columns does not resume on other data.
  ASSERT_TRUE(succeeded(sae("gen --rows 20 --cols 64 --nnz 4 --out narrow.mtx")));
  const Result wrong = sae("train --resume split.ckpt --data narrow.mtx --quiet --backend cpu");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(wrong.err, "sae: error: narrow.mtx: 64 columns, the model in split.ckpt expects 512\n");
}

// A checkpoint saved after the last step of epoch 1 with the epoch not counted (what versions
// that stopped there on a signal wrote): the resumed run counts epoch 1 without a step, its train
// loss "-" in the progress line and null in the metrics log, and trains epoch 2.
TEST_F(Cli, ResumeCountsAnEpochWhoseStepsRanBeforeTheCheckpoint) {
  ensure_data();
  ASSERT_TRUE(
      succeeded(sae("train --epochs 1 -o uncounted.ckpt --data x.mtx "
                    "--hidden 16 --latent 4 --json --quiet --backend cpu")));
  Checkpoint uncounted = load_checkpoint(file("uncounted.ckpt"));
  ASSERT_EQ(uncounted.state.epoch, 1);
  uncounted.state.epoch = 0;
  save_checkpoint(file("uncounted.ckpt"), uncounted);
  const Result resumed =
      sae("train --resume uncounted.ckpt --epochs 2 -o uncounted.ckpt "
          "--metrics-log uncounted.jsonl --data x.mtx --json --no-pca --backend cpu");
  ASSERT_TRUE(succeeded(resumed)) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, "epoch 1/2  train loss -  val loss ")) << resumed.err;
  const std::vector<std::string> log = lines_of(read_text(file("uncounted.jsonl")));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(contains(log[0], "{\"epoch\": 1, \"steps\": ")) << log[0];
  EXPECT_TRUE(contains(log[0], ", \"train_loss\": null, ")) << log[0];
  EXPECT_TRUE(contains(log[1], "{\"epoch\": 2, ")) << log[1];
  EXPECT_FALSE(contains(log[1], "null")) << log[1];
  EXPECT_EQ(load_checkpoint(file("uncounted.ckpt")).state.epoch, 2);
}

TEST_F(Cli, StreamedTrainingSaysSoAndTrainsAsResident) {
  ensure_data();
  const std::string common = " --data x.mtx --hidden 16 --latent 4 --epochs 2 --backend cpu";
  const Result resident = sae("train --placement resident -o resident.ckpt" + common);
  ASSERT_TRUE(succeeded(resident));
  EXPECT_TRUE(contains(resident.err, "\nplacement resident (chosen): ")) << resident.err;
  // A budget below the rows' size streams them under --placement auto; a resumed run may change
  // the placement, which is not part of its configuration.
  const Result streamed =
      sae("train --device-memory-budget 0.01 --epochs 1 -o streamed.ckpt" + common);
  ASSERT_TRUE(succeeded(streamed));
  EXPECT_TRUE(contains(streamed.err, "\nplacement streamed: ")) << streamed.err;
  EXPECT_TRUE(contains(streamed.err, " exceed a 10.2 KiB device-memory budget")) << streamed.err;
  const Result resumed =
      sae("train --resume streamed.ckpt --placement stream --epochs 2 -o streamed.ckpt "
          "--data x.mtx --backend cpu");
  ASSERT_TRUE(succeeded(resumed));
  EXPECT_TRUE(contains(resumed.err, "\nplacement streamed (chosen): ")) << resumed.err;
  EXPECT_TRUE(load_checkpoint(file("streamed.ckpt")).state.parameters ==
              load_checkpoint(file("resident.ckpt")).state.parameters);
}

TEST_F(Cli, CapturedStepSaysSoAndTrainsAsThePlainStep) {
  ensure_data();
  const std::string common = " --data x.mtx --hidden 16 --latent 4 --epochs 2 --backend cpu";
  const Result plain = sae("train -o plain.ckpt" + common);
  ASSERT_TRUE(succeeded(plain));
  EXPECT_TRUE(contains(plain.err, "\nstep plain: every op issued from the host")) << plain.err;
  // Not part of the configuration: a resumed run may turn it on.
  ASSERT_TRUE(succeeded(sae("train --epochs 1 -o captured.ckpt" + common)));
  const Result captured =
      sae("train --resume captured.ckpt --step-graph on --epochs 2 -o captured.ckpt "
          "--data x.mtx --backend cpu");
  ASSERT_TRUE(succeeded(captured));
  EXPECT_TRUE(contains(captured.err,
                       "\nstep captured: every full batch after the epoch's first replays one "
                       "recording"))
      << captured.err;
  EXPECT_TRUE(load_checkpoint(file("captured.ckpt")).state.parameters ==
              load_checkpoint(file("plain.ckpt")).state.parameters);
}

// The cpu emulates tf32 and bf16 products: training runs, says so, and rounds (its parameters
// differ from fp32's).
TEST_F(Cli, ReducedPrecisionTrainsOnCpuAndSaysItIsEmulated) {
  ensure_data();
  // --select loss: a run keeping its start by F1 would hide what the precision did.
  const std::string common =
      " --data x.mtx --hidden 16 --latent 4 --epochs 1 --select loss --backend cpu";
  const Result fp32 = sae("train -o fp32.ckpt" + common);
  ASSERT_TRUE(succeeded(fp32));
  EXPECT_TRUE(contains(fp32.err, ", precision fp32\n")) << fp32.err;
  const Result bf16 = sae("train --precision bf16 -o bf16.ckpt" + common);
  ASSERT_TRUE(succeeded(bf16));
  EXPECT_TRUE(contains(bf16.err, ", precision bf16 (emulated)\n")) << bf16.err;
  EXPECT_FALSE(load_checkpoint(file("bf16.ckpt")).state.parameters ==
               load_checkpoint(file("fp32.ckpt")).state.parameters);
}

// The checkpoint names its data file by its absolute path: eval without --data and a resume
// without --data find it from another working directory. --resume takes the flags that leave
// the configuration alone (here --epochs, -o, --loss-every, --latents, --json, --quiet,
// --backend).
TEST_F(Cli, ACheckpointFindsItsDataFromAnotherDirectory) {
  ASSERT_TRUE(succeeded(trained()));
  fs::create_directories(dir_ / "elsewhere");
  const Result validation = sae("eval --model ../m.ckpt --json --backend cpu", "elsewhere");
  ASSERT_TRUE(succeeded(validation));
  EXPECT_EQ(validation.out, json_object(trained().out, "validation") + "\n");

  const std::string common = " --data x.mtx --hidden 16 --latent 4 --json --quiet --backend cpu";
  ASSERT_TRUE(succeeded(sae("train --epochs 2 -o two.ckpt" + common)));
  ASSERT_TRUE(succeeded(sae("train --epochs 1 -o one.ckpt" + common)));
  const Result resumed =
      sae("train --resume ../one.ckpt --epochs 2 -o ../one.ckpt "
          "--loss-every 1 --latents z1.npy --json --quiet --backend cpu",
          "elsewhere");
  ASSERT_TRUE(succeeded(resumed));
  EXPECT_TRUE(contains(resumed.out, "\"epochs\": 2")) << resumed.out;
  const Checkpoint one = load_checkpoint(file("one.ckpt"));
  const Checkpoint two = load_checkpoint(file("two.ckpt"));
  EXPECT_EQ(one.state.epoch, 2);
  EXPECT_TRUE(one.state.parameters == two.state.parameters)
      << "1 + 1 resumed epochs on the checkpoint's data differ from 2 in one run";
  EXPECT_EQ(one.config.train.loss_every, 1);
  EXPECT_TRUE(names_file(one.config.data_source, file("x.mtx")));
  EXPECT_EQ(read_npy(file("elsewhere/z1.npy"), NpyValues::finite).rows, 300);
}

// Each flag of sae train at least once; the checkpoint's configuration shows it took effect.
TEST_F(Cli, EveryTrainFlagTakesEffect) {
  ensure_data();
  const std::string common = " --data x.mtx --quiet --backend cpu --epochs 1 -o c.ckpt";
  {
    ASSERT_TRUE(
        succeeded(sae("train --loss mae --hidden 16 --latent 4 --hidden-act tanh "
                      "--latent-act sigmoid --output-act softplus --optimizer sgd "
                      "--momentum 0.5 --lr 0.01 --weight-decay 1e-4" +
                      common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::mae);
    EXPECT_EQ(c.model.hidden_activation, Activation::tanh);
    EXPECT_EQ(c.model.latent_activation, Activation::sigmoid);
    EXPECT_EQ(c.model.output_activation, Activation::softplus);
    EXPECT_EQ(c.train.optimizer.kind, OptimizerKind::sgd);
    EXPECT_EQ(c.train.optimizer.momentum, 0.5f);
    EXPECT_EQ(c.train.optimizer.learning_rate, 0.01f);
    EXPECT_EQ(c.train.optimizer.weight_decay, 1e-4f);
  }
  {
    ASSERT_TRUE(
        succeeded(sae("train --loss bce --scale max --optimizer adamw --weight-decay 0.01 "
                      "--clip-norm 1.5 --hidden 16 --latent 4 --output-act relu" +
                      common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::bce);
    EXPECT_EQ(c.train.scale, ScaleMode::max);
    EXPECT_GT(c.scale, 1.0f) << "the data's largest count";
    EXPECT_EQ(c.model.output_activation, Activation::identity) << "bce outputs logits";
    EXPECT_EQ(c.train.optimizer.kind, OptimizerKind::adamw);
    EXPECT_EQ(c.train.optimizer.max_grad_norm, 1.5f);
  }
  {
    ASSERT_TRUE(
        succeeded(sae("train --loss mse_cosine --cosine-weight 0.3 --l1 1e-4 --kl-beta "
                      "0.01 --kl-rho 0.1 --penalty-layer 0 --hidden-act sigmoid --tied "
                      "--hidden 24,12 --latent 6" +
                      common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::mse_cosine);
    EXPECT_EQ(c.train.loss_params.cosine_weight, 0.3f);
    EXPECT_EQ(c.train.penalty.l1_weight, 1e-4f);
    EXPECT_EQ(c.train.penalty.kl_beta, 0.01f);
    EXPECT_EQ(c.train.penalty.kl_rho, 0.1f);
    EXPECT_EQ(c.train.penalty.layer, 0);
    EXPECT_EQ(c.model.hidden_activation, Activation::sigmoid);
    EXPECT_TRUE(c.model.tied_weights);
    EXPECT_EQ(c.model.hidden, (std::vector<std::int64_t>{24, 12}));
    EXPECT_EQ(c.model.latent, 6);
  }
  {
    // poisson: identity output (log-rates), counts unscaled; --output-act identity is accepted.
    ASSERT_TRUE(succeeded(
        sae("train --loss poisson --output-act identity --hidden 16 --latent 4" + common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::poisson);
    EXPECT_EQ(c.model.output_activation, Activation::identity);
    EXPECT_EQ(c.train.scale, ScaleMode::none);
    EXPECT_EQ(c.scale, 1.0f);
  }
  for (const char* loss : {"nb", "zinb", "hurdle", "hurdle_nb"}) {
    // The count likelihoods with several outputs per column: identity output, counts unscaled,
    // an NLL in the metrics, and the checkpoint evaluates with its heads (mode and mean).
    SCOPED_TRACE(loss);
    const Result r = sae(std::string("train --loss ") + loss +
                         " --hidden 16 --latent 4 --json --no-pca" + common);
    ASSERT_TRUE(succeeded(r)) << r.err;
    EXPECT_FALSE(contains(r.out, "\"nll_bits_per_row\": null")) << r.out;
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, parse_loss(loss));
    EXPECT_EQ(c.model.output_activation, Activation::identity);
    EXPECT_EQ(c.train.scale, ScaleMode::none);
    const Result mode = sae("eval --model c.ckpt --data x.mtx --decode mode --json --backend cpu");
    EXPECT_TRUE(contains(mode.out, "\"decode\": \"mode\"")) << mode.out << mode.err;
  }
  {
    // Library size and the dispersion per feature: stored, and used again by eval.
    const Result r = sae(
        "train --loss zinb --dispersion feature --size-factors --input-transform log1p "
        "--hidden 16 --latent 4" + common);
    ASSERT_TRUE(succeeded(r)) << r.err;
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss_params.dispersion, Dispersion::feature);
    EXPECT_TRUE(c.train.loss_params.size_factors);
    EXPECT_EQ(c.train.input_transform, InputTransform::log1p);
    EXPECT_GT(c.reference_library_size, 1.0);
    const Result eval = sae("eval --model c.ckpt --data x.mtx --json --backend cpu");
    EXPECT_TRUE(contains(eval.out, "\"nll_bits_per_row\": ")) << eval.out << eval.err;
    const Result refused =
        sae("train --loss mse --size-factors --data x.mtx --backend cpu --quiet");
    EXPECT_EQ(refused.err,
              "sae: error: --size-factors needs a loss with a log-mean (poisson, nb, zinb, "
              "hurdle, hurdle_nb); --loss mse has none\n");
  }
  {
    ASSERT_TRUE(
        succeeded(sae("train --loss weighted_mse --zero-weight 0.25 --hidden 16 "
                      "--latent 4" +
                      common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::weighted_mse);
    EXPECT_EQ(c.train.loss_params.zero_weight, 0.25f);
    EXPECT_EQ(c.train.loss_params.huber_delta, 1.0f) << "the default";
  }
  {
    ASSERT_TRUE(
        succeeded(sae("train --loss huber --huber-delta 2.5 --output-act softplus "
                      "--hidden 16 --latent 4" +
                      common)));
    const RunConfig c = load_checkpoint(file("c.ckpt")).config;
    EXPECT_EQ(c.train.loss, LossKind::huber);
    EXPECT_EQ(c.train.loss_params.huber_delta, 2.5f);
    EXPECT_EQ(c.train.loss_params.zero_weight, 0.1f) << "the default";
    EXPECT_EQ(c.model.output_activation, Activation::softplus);
  }
  {
    const Result r =
        sae("train --decoder-hidden 16,24 --hidden 20 --latent 4 --schedule cosine "
            "--warmup 5 --patience 1 --val-frac 0.2 --seed 7 --batch 50 "
            "--loss-every 2 --metrics-log d.jsonl --data x.mtx --quiet --backend cpu "
            "--epochs 3 -o c.ckpt");
    ASSERT_TRUE(succeeded(r));
    const Checkpoint checkpoint = load_checkpoint(file("c.ckpt"));
    const RunConfig& c = checkpoint.config;
    EXPECT_FALSE(c.model.mirror_decoder);
    EXPECT_EQ(c.model.decoder_hidden, (std::vector<std::int64_t>{16, 24}));
    EXPECT_EQ(c.train.schedule, LrSchedule::cosine);
    EXPECT_EQ(c.train.warmup_steps, 5);
    EXPECT_EQ(c.train.patience, 1);
    EXPECT_EQ(c.train.val_fraction, 0.2);
    EXPECT_EQ(c.train.seed, 7u);
    EXPECT_EQ(c.model.seed, 7u);
    EXPECT_EQ(c.train.batch_size, 50);
    EXPECT_EQ(c.train.loss_every, 2);
    // 240 training rows in batches of 50: 5 steps an epoch; warm-up over 5 steps, then cosine.
    const std::vector<std::string> log = lines_of(read_text(file("d.jsonl")));
    ASSERT_GE(log.size(), 1u);
    EXPECT_TRUE(contains(log[0], "\"steps\": 5,")) << log[0];
  }
  {
    // The embedded dataset (no --data), sized by --rows; eval rebuilds it from the checkpoint.
    ASSERT_TRUE(
        succeeded(sae("train --rows 200 --hidden 16 --latent 4 --epochs 1 --quiet "
                      "--backend cpu -o e.ckpt --json")));
    EXPECT_EQ(load_checkpoint(file("e.ckpt")).config.data_source, "embedded:rows=200,seed=42");
    const Result eval = sae("eval --model e.ckpt --json --backend cpu");
    ASSERT_TRUE(succeeded(eval));
    EXPECT_TRUE(contains(eval.out, "{\"rows\": 20, ")) << eval.out;
  }
  {
    // Without --json and --quiet: the human report on stdout, progress lines on stderr.
    const Result r =
        sae("train --data x.mtx --hidden 16 --latent 4 --epochs 1 --backend cpu "
            "-o c.ckpt --reconstruction r.npy");
    ASSERT_TRUE(succeeded(r));
    EXPECT_TRUE(contains(r.out, "validation rows (30), counts decoded by round:")) << r.out;
    // The PCA baseline of the same width, in a column beside the model's metrics.
    EXPECT_TRUE(contains(r.out, "pca         4 components fitted on the training rows in ")) << r.out;
    EXPECT_TRUE(contains(r.out, "model         pca\n  exact-entry F1")) << r.out;
    EXPECT_TRUE(contains(r.err, "data: x.mtx: 300 rows x 512 columns")) << r.err;
    EXPECT_TRUE(contains(r.err, "epoch 1/1")) << r.err;
    const HostDense values = read_npy(file("r.npy"), NpyValues::finite);
    EXPECT_EQ(values.rows, 300);
    EXPECT_EQ(values.cols, 512);
  }
}

// The text after "key": in a JSON line, up to the next comma or brace.
std::string json_value(const std::string& line, const std::string& key) {
  const std::size_t at = line.find("\"" + key + "\": ");
  if (at == std::string::npos) return "";
  const std::size_t begin = at + key.size() + 4;
  return line.substr(begin, line.find_first_of(",}", begin) - begin);
}

// --select f1 (the default) keeps the parameters of the best validation exact F1, the start
// included: the metrics log shows each epoch's, and the kept epoch's is the run's F1; --select
// loss keeps those of the lowest validation loss and logs no F1.
// --pca-anchor: the run starts at the PCA of its training rows (said in one line), keeps its best
// validation F1 from that start on, so it ends no lower than the PCA baseline it reports; the
// checkpoint keeps the skip, and eval of it gives the run's headline.
TEST_F(Cli, PcaAnchorEndsNoLowerThanThePcaBaseline) {
  ensure_data();
  const Result run =
      sae("train --data x.mtx --pca-anchor --input-transform none --loss huber --huber-delta 0.5 "
          "--hidden 16 --latent 4 --epochs 3 --lr 0.01 --json -o anchored.ckpt "
          "--backend cpu");
  ASSERT_TRUE(succeeded(run)) << run.err;
  EXPECT_TRUE(contains(run.err, "anchor: PCA-4 of the ")) << run.err;
  EXPECT_TRUE(contains(run.err, ", linear skip), ")) << run.err;
  const double model_f1 = std::stod(json_value(json_object(run.out, "validation"), "exact_f1"));
  const double pca_f1 =
      std::stod(json_value(json_object(json_object(run.out, "pca"), "validation"), "exact_f1"));
  // Float rounding of the same PCA may move an entry sitting on a half by one count.
  EXPECT_GE(model_f1, pca_f1 - 2e-3) << run.out;
  // Without --data, eval measures the run's validation rows again: train's numbers.
  const Result eval = sae("eval --model anchored.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval)) << eval.err;
  EXPECT_EQ(eval.out, json_object(run.out, "validation") + "\n");
}

TEST_F(Cli, SelectKeepsTheBestValidationF1OrTheLowestLoss) {
  ensure_data();
  // hurdle at lr 0.01: on these rows its F1 peaked after epoch 1 of 4 (measured), so the kept
  // epoch is neither the start nor the last.
  const std::string common =
      " --data x.mtx --loss hurdle --hidden 16 --latent 4 --epochs 4 --lr 0.01 --no-pca --json "
      "--quiet --backend cpu";
  const Result f1 = sae("train --select f1 --metrics-log f1.jsonl -o f1.ckpt" + common);
  ASSERT_TRUE(succeeded(f1));
  EXPECT_TRUE(contains(f1.out, "\"select\": \"f1\"")) << f1.out;
  const std::string kept_text = json_value(f1.out, "kept_epoch");
  ASSERT_FALSE(kept_text.empty()) << f1.out;
  const int kept = std::stoi(kept_text);
  const std::string run_f1 = json_value(json_object(f1.out, "validation"), "exact_f1");
  const std::vector<std::string> f1_log = lines_of(read_text(file("f1.jsonl")));
  ASSERT_EQ(f1_log.size(), 4u);
  for (const std::string& line : f1_log) {
    const std::string epoch_f1 = json_value(line, "val_f1");
    ASSERT_FALSE(epoch_f1.empty()) << line;
    EXPECT_LE(std::stod(epoch_f1), std::stod(run_f1)) << "an epoch beat the one kept: " << line;
  }
  if (kept > 0) {
    EXPECT_EQ(json_value(f1_log[kept - 1], "val_f1"), run_f1) << f1_log[kept - 1];
    EXPECT_EQ(json_value(f1_log[kept - 1], "best"), "true") << f1_log[kept - 1];
  }

  const Result loss = sae("train --select loss --metrics-log loss.jsonl -o loss.ckpt" + common);
  ASSERT_TRUE(succeeded(loss));
  EXPECT_TRUE(contains(loss.out, "\"select\": \"loss\"")) << loss.out;
  const std::vector<std::string> loss_log = lines_of(read_text(file("loss.jsonl")));
  ASSERT_EQ(loss_log.size(), 4u);
  std::size_t lowest = 0;
  for (std::size_t e = 0; e < loss_log.size(); ++e) {
    EXPECT_FALSE(contains(loss_log[e], "val_f1")) << loss_log[e];
    if (std::stod(json_value(loss_log[e], "val_loss")) <
        std::stod(json_value(loss_log[lowest], "val_loss")))
      lowest = e;
  }
  EXPECT_EQ(json_value(loss.out, "kept_epoch"), std::to_string(lowest + 1)) << loss.out;
  EXPECT_EQ(json_value(loss.out, "validation_loss"), json_value(loss_log[lowest], "val_loss"))
      << "the kept parameters are those of the lowest validation loss";

  // The progress lines show each epoch's F1 and mark the best; the report names the kept epoch.
  const Result shown =
      sae("train --data x.mtx --hidden 16 --latent 4 --epochs 2 --no-pca "
          "-o shown.ckpt --backend cpu");
  ASSERT_TRUE(succeeded(shown));
  EXPECT_TRUE(contains(shown.err, "  val F1 ")) << shown.err;
  EXPECT_TRUE(contains(shown.out, ", the best validation exact F1 (--select)\n")) << shown.out;
}

// Bad input: a non-zero exit (2 for a command line that cannot be read, 1 otherwise), nothing on
// stdout, exactly one line on stderr that says what is wrong, and no checkpoint left behind.
TEST_F(Cli, BadInputFailsWithOneClearLine) {
  ensure_data();
  struct Case {
    std::string args;
    int exit_code;
    std::string message;  // the whole stderr line, without its newline
  };
  const Case cases[] = {
      {"train --bogus 1", 2,
       "sae: error: sae train: unknown option '--bogus' (see sae train --help)"},
      {"train --epochs abc --backend cpu", 2,
       "sae: error: sae train: --epochs: 'abc' is not an integer"},
      {"train --lr fast --backend cpu", 2, "sae: error: sae train: --lr: 'fast' is not a number"},
      {"train --hidden 32,x --backend cpu", 2,
       "sae: error: sae train: --hidden: '32,x' is not a comma-separated list of positive "
       "integers"},
      {"train --epochs", 2, "sae: error: sae train: --epochs: needs a value (N)"},
      {"train --out=", 2, "sae: error: sae train: --out: needs a value (PATH)"},
      {"train --quiet=1", 2, "sae: error: sae train: --quiet: takes no value"},
      {"train -x", 2, "sae: error: sae train: unknown option '-x' (see sae train --help)"},
      {"train --epochs 2 -- --rows 5", 2,
       "sae: error: sae train: unexpected argument '--' (see sae train --help)"},
      {"train --epochs 2 stray", 2,
       "sae: error: sae train: unexpected argument 'stray' (see sae train --help)"},
      {"train --pca-anchor --latent-act relu --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --pca-anchor starts the codes at PCA's, which are signed: its "
       "latent activation is identity (drop --latent-act)"},
      {"train --pca-anchor --tied --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --pca-anchor needs untied weights (drop --tied)"},
      {"train --pca-anchor --hidden '' --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --pca-anchor puts a nonlinear branch beside each linear path: it "
       "needs hidden layers on both sides (--hidden, --decoder-hidden)"},
      {"train --loss hinge --backend cpu", 1,
       "sae: error: unknown loss 'hinge': expected mse, mae, bce, mse_cosine, poisson, "
       "weighted_mse, huber, nb, zinb, hurdle or hurdle_nb"},
      {"train --data x.mtx --loss bce --backend cpu", 1,
       "sae: error: sae train: --loss bce needs targets in [0, 1]: add --scale max"},
      // The count losses' checks come before any data is read (the file does not exist).
      {"train --loss poisson --scale max --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --loss poisson models the counts themselves, which must stay "
       "integers: use --scale none"},
      {"train --loss poisson --output-act softplus --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --loss poisson outputs log-rates: its output activation is "
       "identity (drop --output-act)"},
      {"train --loss nb --scale max --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --loss nb models the counts themselves, which must stay "
       "integers: use --scale none"},
      {"train --loss zinb --output-act relu --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --loss zinb outputs log-rates and logits: its output activation "
       "is identity (drop --output-act)"},
      {"train --loss hurdle --tied --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --tied needs one output per column; --loss hurdle has 2 (drop "
       "--tied)"},
      {"train --loss huber --huber-delta 0 --data missing.mtx --backend cpu", 1,
       "sae: error: huber delta (--huber-delta) must be finite and positive"},
      {"train --loss huber --huber-delta -2 --data missing.mtx --backend cpu", 1,
       "sae: error: huber delta (--huber-delta) must be finite and positive"},
      {"train --lr 0 --data missing.mtx --backend cpu", 1,
       "sae: error: learning rate (--lr) must be finite and positive, not 0.000000"},
      {"train --lr -1e-3 --data missing.mtx --backend cpu", 1,
       "sae: error: learning rate (--lr) must be finite and positive, not -0.001000"},
      {"train --weight-decay -1 --data missing.mtx --backend cpu", 1,
       "sae: error: weight decay (--weight-decay) must be finite and non-negative, not "
       "-1.000000"},
      {"train --optimizer sgd --momentum 1 --data missing.mtx --backend cpu", 1,
       "sae: error: momentum (--momentum) must lie in [0, 1), not 1.000000"},
      {"train --clip-norm -1 --data missing.mtx --backend cpu", 1,
       "sae: error: clipping norm (--clip-norm) must be finite and non-negative (0: off), not "
       "-1.000000"},
      {"train --warmup -5 --data missing.mtx --backend cpu", 1,
       "sae: error: warmup steps (--warmup) must not be negative"},
      {"train --patience -2 --data missing.mtx --backend cpu", 1,
       "sae: error: patience (--patience) must not be negative (0: never stop early)"},
      {"train --loss-every -1 --data missing.mtx --backend cpu", 1,
       "sae: error: --loss-every must not be negative (0: never)"},
      {"train --loss weighted_mse --zero-weight -0.5 --data missing.mtx --backend cpu", 1,
       "sae: error: zero-target weight of weighted_mse (--zero-weight) must be finite and "
       "non-negative"},
      {"train --precision fp8 --data missing.mtx --backend cpu", 1,
       "sae: error: unknown precision 'fp8': expected fp32, tf32 or bf16"},
      {"train --placement device --data missing.mtx --backend cpu", 1,
       "sae: error: unknown data placement 'device': expected auto, resident or stream"},
      {"train --layer-forward merged --data missing.mtx --backend cpu", 1,
       "sae: error: unknown layer forward 'merged': expected separate or fused"},
      {"train --step-graph yes --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --step-graph takes on or off, not 'yes'"},
      {"train --select auc --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --select takes auto, f1 or loss, not 'auc'"},
      {"train --rate-lambda -1 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --rate-lambda must be finite and at least 0"},
      {"train --rate-lambda 1 --latent-act relu --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --rate-lambda codes the latents as signed integers: its latent "
       "activation is identity (drop --latent-act)"},
      {"train --auto --rate-lambda 1 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --auto searches for exact reconstruction, --rate-lambda trains "
       "for a small lossless file: train with --rate-lambda without --auto"},
      {"train --latent-act topk:0 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --latent-act topk:0 keeps K of the 32 latents of --latent: K "
       "from 1 to 32"},
      {"train --latent-act topk:99 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --latent-act topk:99 keeps K of the 32 latents of --latent: K "
       "from 1 to 32"},
      {"train --latent-act topk:abc --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --latent-act topk:K takes a whole number K of latents to keep, not "
       "'abc'"},
      {"train --latent-act batchtopk:-3 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --latent-act batchtopk:K takes a whole number K of latents to "
       "keep, not '-3'"},
      {"train --latent-act top:4 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --latent-act takes an activation, topk:K or batchtopk:K, not "
       "'top:4'"},
      // Both select among a relu's outputs: PCA's signed codes and the rate's signed integers
      // need an identity latent.
      {"train --latent-act batchtopk:4 --pca-anchor --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --pca-anchor starts the codes at PCA's, which are signed: its "
       "latent activation is identity (drop --latent-act)"},
      {"train --latent-act topk:4 --rate-lambda 1 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --rate-lambda codes the latents as signed integers: its latent "
       "activation is identity (drop --latent-act)"},
      {"train --auto --latent-act topk:4 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --auto chooses --latent-act; drop it"},
      {"train --auto --auto-rows -5 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --auto-rows must be 0 (every row) or a number of rows"},
      {"train --auto-rows 100 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --auto-rows sets the recipe search: give --auto"},
      {"train --auto-budget 60 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --auto-budget sets the recipe search: give --auto"},
      {"train --device-memory-budget -5 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --device-memory-budget must be a size in MiB, at least 0"},
      {"train --zero-weight lots --backend cpu", 2,
       "sae: error: sae train: --zero-weight: 'lots' is not a number"},
      {"train --data missing.mtx --backend cpu", 1,
       "sae: error: missing.mtx: cannot open: No such file or directory"},
      {"train --tied --decoder-hidden 16 --backend cpu", 1,
       "sae: error: model: tied weights need a decoder that mirrors the encoder"},
      {"train --kl-rho 1.5 --backend cpu", 1,
       "sae: error: KL sparsity target rho (--kl-rho) must lie in (0, 1)"},
      // The KL penalty needs a sigmoid layer; the check comes before any data is read (the
      // file does not exist).
      {"train --kl-beta 0.1 --data missing.mtx --backend cpu", 1,
       "sae: error: KL sparsity penalty needs a sigmoid layer: layer 2 is relu (use --latent-act "
       "sigmoid, or --hidden-act sigmoid with --penalty-layer)"},
      {"train --kl-beta 0.1 --latent-act sigmoid --penalty-layer 0 --data missing.mtx "
       "--backend cpu",
       1,
       "sae: error: KL sparsity penalty needs a sigmoid layer: layer 0 is relu (use --latent-act "
       "sigmoid, or --hidden-act sigmoid with --penalty-layer)"},
      {"train --kl-beta 0.1 --hidden-act sigmoid --data missing.mtx --backend cpu", 1,
       "sae: error: KL sparsity penalty needs a sigmoid layer: layer 2 is relu (use --latent-act "
       "sigmoid, or --hidden-act sigmoid with --penalty-layer)"},
      // A resumed run's configuration is the checkpoint's: refused before the checkpoint or the
      // data is read (neither exists).
      {"train --resume missing.ckpt --hidden 8 --data missing.mtx --backend cpu", 1,
       "sae: error: sae train: --hidden cannot change a resumed run (its configuration comes "
       "from the checkpoint)"},
      {"train --resume missing.ckpt --epochs 3 --lr 0.1 --backend cpu", 1,
       "sae: error: sae train: --lr cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --tied --resume missing.ckpt --backend cpu", 1,
       "sae: error: sae train: --tied cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --resume missing.ckpt --kl-beta 0.1 --backend cpu", 1,
       "sae: error: sae train: --kl-beta cannot change a resumed run (its configuration comes "
       "from the checkpoint)"},
      {"train --resume missing.ckpt --seed 2 --backend cpu", 1,
       "sae: error: sae train: --seed cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --resume missing.ckpt --val-frac 0.2 --backend cpu", 1,
       "sae: error: sae train: --val-frac cannot change a resumed run (its configuration comes "
       "from the checkpoint)"},
      {"train --resume missing.ckpt --scale max --backend cpu", 1,
       "sae: error: sae train: --scale cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --resume missing.ckpt --loss poisson --backend cpu", 1,
       "sae: error: sae train: --loss cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --resume missing.ckpt --zero-weight 0.5 --backend cpu", 1,
       "sae: error: sae train: --zero-weight cannot change a resumed run (its configuration comes "
       "from the checkpoint)"},
      {"train --resume missing.ckpt --huber-delta 2 --backend cpu", 1,
       "sae: error: sae train: --huber-delta cannot change a resumed run (its configuration "
       "comes from the checkpoint)"},
      {"train --resume missing.ckpt --batch 32 --backend cpu", 1,
       "sae: error: sae train: --batch cannot change a resumed run (its configuration comes from "
       "the checkpoint)"},
      {"train --resume missing.ckpt --epochs -1 --backend cpu", 1,
       "sae: error: sae train: --epochs must not be negative"},
      {"train --resume missing.ckpt --epochs 3 --data x.mtx --backend cpu", 1,
       "sae: error: missing.ckpt: cannot open checkpoint"},
      {"train --backend gpu", 1, "sae: error: unknown backend 'gpu': expected auto, cpu or cuda"},
      // --decode: checked against the loss before any data is read; taken with --resume.
      {"train --decode mode --data missing.mtx --backend cpu", 1,
       "sae: error: --decode mode needs a count likelihood "
       "(poisson, nb, zinb, hurdle, hurdle_nb); the "
       "model's loss is mse"},
      {"train --loss huber --decode mode --data missing.mtx --backend cpu", 1,
       "sae: error: --decode mode needs a count likelihood "
       "(poisson, nb, zinb, hurdle, hurdle_nb); the "
       "model's loss is huber"},
      {"train --decode median --data missing.mtx --backend cpu", 1,
       "sae: error: unknown decode mode 'median': expected round, mode or mean"},
      {"train --resume missing.ckpt --decode mean --backend cpu", 1,
       "sae: error: missing.ckpt: cannot open checkpoint"},
      {"encode --data x.mtx --out z.npy --backend cpu", 2,
       "sae: error: sae encode: --model: is required"},
      {"encode --model missing.ckpt --data x.mtx --out z.npy --backend cpu", 1,
       "sae: error: missing.ckpt: cannot open checkpoint"},
      {"decode --model missing.ckpt --out d.npy --backend cpu", 2,
       "sae: error: sae decode: give exactly one of --latents, --data"},
      {"frobnicate", 2, "sae: error: unknown command 'frobnicate' (see sae --help)"},
      {"trian --epochs 1", 2,
       "sae: error: unknown command 'trian': did you mean 'train'? (see sae --help)"},
      {"train --epoch 1 --backend cpu", 2,
       "sae: error: sae train: unknown option '--epoch': did you mean '--epochs'? (see sae train "
       "--help)"},
      // The model file's name where it is written, given where it is read, and the other way.
      {"eval --checkpoint m.ckpt --backend cpu", 2,
       "sae: error: sae eval: unknown option '--checkpoint': did you mean '--model'? (see sae eval "
       "--help)"},
      {"train --model m.ckpt --backend cpu", 2,
       "sae: error: sae train: unknown option '--model': did you mean '--out'? (see sae "
       "train --help)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("sae " + c.args);
    fs::remove(file("sae-model.ckpt"));
    const Result r = sae(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, c.message + "\n");
    EXPECT_FALSE(fs::exists(file("sae-model.ckpt"))) << "a failed run left a checkpoint";
  }
  // The penalty layer must exist: 512-256-128-32-128-256-512 has 6 layers.
  const Result layer = sae("train --penalty-layer 6 --backend cpu");
  EXPECT_EQ(layer.exit_code, 1);
  EXPECT_EQ(layer.err,
            "sae: error: penalty layer 6 does not exist (--penalty-layer): expected -1 for the "
            "latent or a layer index below 6\n");
}

// Bad files, to every command that reads one: exit code 1, one line on stderr that names the file,
// the position and the reason, nothing on stdout, and no output file, not even a temporary one.
// Each reader's every case is in bad_input_test.cpp; these are the same errors seen from the CLI.
TEST_F(Cli, BadInputFilesFailWithOneLineAndLeaveNoOutput) {
  ASSERT_TRUE(succeeded(trained()));
  const fs::path bad = dir_ / "bad";
  fs::create_directories(bad);
  fs::copy_file(file("m.ckpt"), bad / "m.ckpt", fs::copy_options::overwrite_existing);
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(bad / name, std::ios::binary) << bytes;
  };
  const std::string banner = "%%MatrixMarket matrix coordinate integer general\n";
  write("negative.mtx", banner + "3 512 2\n1 1 1\n2 7 -2\n");
  write("real.mtx", banner + "3 512 1\n1 1 0.5\n% end\n");
  write("outside.mtx", banner + "3 512 1\n4 1 1\n% end\n");
  write("ragged.csv", "1,2,3\n4,5\n");
  write("header-only.csv", "a,b,c\n");
  write("one-row.mtx", banner + "1 512 1\n1 1 2\n");
  write("empty.npy", "");
  write("narrow.mtx", banner + "3 64 1\n1 1 1\n% end\n");
  write("empty.ckpt", "");
  {
    const std::string whole = test::gzipped(read_text(file("x.mtx")));
    write("cut.mtx.gz", whole.substr(0, whole.size() / 2));
  }
  HostDense three_wide;
  three_wide.rows = 2;
  three_wide.cols = 3;
  three_wide.values.assign(6, 0.5f);
  write_npy((bad / "three.npy").string(), three_wide);

  struct Case {
    std::string args;
    std::string output;  // the file the command would have written
    std::string message;
  };
  const Case cases[] = {
      {"train --data negative.mtx -o out.ckpt --latents out.npy", "out.ckpt",
       "negative.mtx:4: negative count -2"},
      {"train --data real.mtx -o out.ckpt", "out.ckpt",
       "real.mtx:3: value 0.5 is not an integer (the header declares integer)"},
      {"train --data ragged.csv -o out.ckpt", "out.ckpt",
       "ragged.csv:2: row has 2 fields, expected 3"},
      {"train --data header-only.csv -o out.ckpt --quiet", "out.ckpt",
       "header-only.csv: 0 rows; fitting a model needs at least 2"},
      {"compare --data one-row.mtx --losses mse --report out.html --quiet", "out.html",
       "one-row.mtx: 1 row; fitting a model needs at least 2"},
      {"pca --data one-row.mtx --k 1 -o out.ckpt --quiet", "out.ckpt",
       "one-row.mtx: 1 row; fitting a model needs at least 2"},
      {"encode --model m.ckpt --data outside.mtx --out out.npy", "out.npy",
       "outside.mtx:3: row index 4 outside [1, 3]"},
      {"encode --model m.ckpt --data cut.mtx.gz --out out.npy", "out.npy",
       "cut.mtx.gz: truncated or corrupt gzip data (unexpected end of file)"},
      {"decode --model m.ckpt --data empty.npy --out out.mtx", "out.mtx",
       "empty.npy: empty file (expected a .npy header)"},
      {"encode --model m.ckpt --data narrow.mtx --out out.npy", "out.npy",
       "narrow.mtx: 64 columns, the model in m.ckpt expects 512"},
      {"eval --model m.ckpt --data narrow.mtx", "",
       "narrow.mtx: 64 columns, the model in m.ckpt expects 512"},
      {"decode --model m.ckpt --latents three.npy --out out.mtx", "out.mtx",
       "three.npy: 3 columns, the model in m.ckpt has 8 latent columns"},
      {"encode --model empty.ckpt --data negative.mtx --out out.npy", "out.npy",
       "empty.ckpt: empty file (expected a sparseae checkpoint)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("sae " + c.args);
    const Result r = sae(c.args + " --backend cpu", "bad");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "sae: error: " + c.message + "\n");
    for (const auto& entry : fs::directory_iterator(bad))
      EXPECT_FALSE(contains(entry.path().filename().string(), "out."))
          << "left " << entry.path().filename();
  }
}

// A declared size beyond the memory this process may use (here 1 GiB, by ulimit -d) fails before
// anything is allocated.
TEST_F(Cli, ADeclaredSizeBeyondTheMemoryLimitFailsBeforeAllocating) {
  if (test::kAddressSanitizer)
    GTEST_SKIP() << "AddressSanitizer maps terabytes of shadow memory, which ulimit -d forbids";
  std::ofstream(file("huge.mtx")) << "%%MatrixMarket matrix coordinate integer general\n"
                                     "2147483647 512 0\n";
  const Result huge =
      sae("train --data huge.mtx -o huge.ckpt --backend cpu", "", "ulimit -d 1048576; ");
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_EQ(huge.err,
            "sae: error: huge.mtx:2: 2147483647 rows and 0 entries need 16.0 GiB, more than the "
            "1.0 GiB of memory this process may use\n");
  EXPECT_FALSE(fs::exists(file("huge.ckpt")));
}

// --decode on sae train, eval and decode: the .mtx files and the reports follow the flag, train
// stores it in the checkpoint and eval and decode use the stored one unless given the flag, it
// is taken with --resume, and an mse model refuses mode with one line, before it reads data.
TEST_F(Cli, DecodeFlagChoosesHowOutputsBecomeCounts) {
  ASSERT_TRUE(succeeded(trained()));
  // --select loss: by F1, the kept epoch would depend on the decode, and the two runs below would
  // keep different models.
  const std::string common =
      " --data x.mtx --loss poisson --epochs 2 --hidden 16 --latent 4 --select loss "
      "--json --quiet --backend cpu";
  const Result by_mode =
      sae("train -o p.ckpt --reconstruction p-mode.mtx "
          "--decode mode" +
          common);
  ASSERT_TRUE(succeeded(by_mode));
  const std::string mode_json = json_object(by_mode.out, "validation");
  EXPECT_TRUE(contains(mode_json, "\"decode\": \"mode\"")) << mode_json;
  EXPECT_FALSE(contains(mode_json, "\"nll_bits_per_row\": null")) << "poisson has an NLL";
  for (const char* field : {"\"support_f1\": ", "\"nonzero_mae\": ", "\"explained_variance\": ",
                            "\"poisson_deviance\": ", "\"raw_csr_bytes_per_row\": "})
    EXPECT_TRUE(contains(mode_json, field)) << field << " missing from " << mode_json;
  const Result by_mean = sae("train -o q.ckpt --reconstruction p-mean.mtx --decode mean" + common);
  ASSERT_TRUE(succeeded(by_mean));
  const std::string mean_json = json_object(by_mean.out, "validation");
  EXPECT_TRUE(contains(mean_json, "\"decode\": \"mean\"")) << mean_json;
  EXPECT_TRUE(
      contains(by_mean.out, "\"decode\": {\"name\": \"mean\", \"chosen_by\": \"--decode\"}"))
      << by_mean.out;
  // Each run names the other decode and the exact-entry F1 it would give. The two runs train the
  // same model (same flags and seed, cpu), so each one's alternative is the other's headline; an
  // mse model has one decode and names none.
  const auto f1_field = [](const std::string& json) {
    const std::size_t at = json.find("\"exact_f1\": ");
    return at == std::string::npos ? std::string()
                                   : json.substr(at, json.find_first_of(",}", at) - at);
  };
  const std::string mode_instead = json_object(by_mode.out, "alternative_decode");
  EXPECT_TRUE(contains(mode_instead, "\"decode\": \"mean\"")) << by_mode.out;
  EXPECT_EQ(f1_field(mode_instead), f1_field(mean_json)) << by_mode.out;
  const std::string mean_instead = json_object(by_mean.out, "alternative_decode");
  EXPECT_TRUE(contains(mean_instead, "\"decode\": \"mode\"")) << by_mean.out;
  EXPECT_EQ(f1_field(mean_instead), f1_field(mode_json)) << by_mean.out;
  EXPECT_FALSE(contains(trained().out, "alternative_decode")) << trained().out;
  const Result text =
      sae("train -o t.ckpt --data x.mtx --loss poisson --epochs 1 "
          "--hidden 16 --latent 4 --quiet --no-pca --backend cpu --decode mean");
  ASSERT_TRUE(succeeded(text));
  EXPECT_TRUE(contains(text.out, "decoded by mode instead, the exact-entry F1 would be "))
      << text.out;
  EXPECT_TRUE(contains(text.out, " % (--decode mode)\n")) << text.out;
  const Checkpoint p = load_checkpoint(file("p.ckpt"));
  RunConfig q = load_checkpoint(file("q.ckpt")).config;
  EXPECT_EQ(p.config.decode, DecodeMode::mode);
  EXPECT_EQ(q.decode, DecodeMode::mean);
  q.decode = DecodeMode::mode;
  EXPECT_EQ(run_config_to_json(q), run_config_to_json(p.config))
      << "--decode changes the stored decode and nothing else";

  // The .mtx files hold the counts of the chosen decode.
  const auto backend = make_backend(BackendChoice::cpu);
  TrainedModel model(*backend, p.config, p.state.parameters);
  const HostCsr x = read_matrix_market(file("x.mtx"));
  const HostDense rates = model.reconstruct(x);
  const HostCsr mode_counts = model.to_counts(rates, DecodeMode::mode);
  const HostCsr mean_counts = model.to_counts(rates, DecodeMode::mean);
  expect_same(read_matrix_market(file("p-mode.mtx")), mode_counts, "train --reconstruction, mode");
  expect_same(read_matrix_market(file("p-mean.mtx")), mean_counts, "train --reconstruction, mean");

  // eval: the default is the stored decode, the same numbers train printed; --decode changes
  // it; the table names the decode and has the NLL line.
  const Result eval_mode = sae("eval --model p.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_mode));
  EXPECT_EQ(eval_mode.out, mode_json + "\n");
  const Result eval_mean = sae("eval --model p.ckpt --decode mean --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_mean));
  EXPECT_EQ(eval_mean.out, mean_json + "\n");
  const Result eval_stored_mean = sae("eval --model q.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_stored_mean));
  EXPECT_EQ(eval_stored_mean.out, mean_json + "\n");
  const Result eval_round = sae("eval --model p.ckpt --data x.mtx --decode round --backend cpu");
  ASSERT_TRUE(succeeded(eval_round));
  const std::vector<std::string> lines = lines_of(eval_round.out);
  ASSERT_EQ(lines.size(), 18u) << eval_round.out;
  EXPECT_EQ(lines[0], "x.mtx (300 rows), counts decoded by round:");
  for (const char* label :
       {"exact-entry F1", "exact precision", "exact recall (nz exact)", "rows exact",
        "support precision", "support recall", "support F1", "non-zero mae (counts)", "mse", "mae",
        "explained variance", "poisson deviance / entry", "nll bits / row", "raw csr bytes / row",
        "latent L0 (non-zeros / row)", "dead latents", "dense latents (> 1/2 rows)"})
    EXPECT_TRUE(contains(eval_round.out, std::string("  ") + label + " ")) << label;

  // decode: --data and --latents, by the stored decode and by --decode.
  ASSERT_TRUE(succeeded(sae("decode --model q.ckpt --data x.mtx --out dm.mtx --backend cpu")));
  expect_same(read_matrix_market(file("dm.mtx")), mean_counts, "decode, stored mean");
  ASSERT_TRUE(succeeded(sae("decode --model p.ckpt --data x.mtx --out dp.mtx --backend cpu")));
  expect_same(read_matrix_market(file("dp.mtx")), mode_counts, "decode, stored mode");
  ASSERT_TRUE(succeeded(sae("encode --model q.ckpt --data x.mtx --out pz.npy --backend cpu")));
  ASSERT_TRUE(succeeded(
      sae("decode --model q.ckpt --latents pz.npy --out dn.mtx --decode mode --backend cpu")));
  expect_same(read_matrix_market(file("dn.mtx")), mode_counts, "decode --latents, mode");

  // --resume takes --decode.
  const Result resumed =
      sae("train --resume q.ckpt --epochs 3 -o q.ckpt --decode round --select loss "
          "--json --quiet --backend cpu");
  ASSERT_TRUE(succeeded(resumed));
  EXPECT_TRUE(contains(resumed.out, "\"epochs\": 3")) << resumed.out;
  EXPECT_TRUE(contains(json_object(resumed.out, "validation"), "\"decode\": \"round\""))
      << resumed.out;
  EXPECT_EQ(load_checkpoint(file("q.ckpt")).config.decode, DecodeMode::round);

  // mse (m.ckpt): mean is allowed (it is the rounded mean), mode is refused before the data is
  // read, and nothing is written.
  const Result mse_mean = sae("eval --model m.ckpt --decode mean --json --backend cpu");
  ASSERT_TRUE(succeeded(mse_mean));
  EXPECT_TRUE(contains(mse_mean.out, "\"decode\": \"mean\"")) << mse_mean.out;
  EXPECT_TRUE(contains(mse_mean.out, "\"nll_bits_per_row\": null")) << mse_mean.out;
  const std::string refused =
      "sae: error: --decode mode needs a count likelihood "
      "(poisson, nb, zinb, hurdle, hurdle_nb); the model's "
      "loss is mse\n";
  for (const std::string args :
       {"eval --model m.ckpt --decode mode --data missing.mtx --backend cpu",
        "eval --model m.ckpt --decode mode --backend cpu",
        "decode --model m.ckpt --decode mode --data missing.mtx --out no.mtx --backend cpu",
        "decode --model m.ckpt --decode mode --latents z.npy --out no.npy --backend cpu",
        "train --resume m.ckpt --decode mode --data missing.mtx --backend cpu"}) {
    SCOPED_TRACE(args);
    const Result r = sae(args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, refused);
  }
  EXPECT_FALSE(fs::exists(file("no.mtx")));
  EXPECT_FALSE(fs::exists(file("no.npy")));

  for (const char* command : {"train", "eval", "decode"}) {
    const Result help = sae(std::string(command) + " --help");
    EXPECT_TRUE(contains(help.out, "--decode round|mode|mean")) << command << ": " << help.out;
  }
}

// --decode mode writes counts for every count likelihood, the multi-head ones (nb, zinb, hurdle)
// included: sae train --reconstruction and sae decode (--data and --latents) write the counts the
// metrics measure, decoded from the model's raw outputs. A hurdle run chooses its support
// threshold on the validation rows, stores it in the checkpoint and reports it; eval, decode
// and the library use the stored one.
TEST_F(Cli, ModeDecodeWritesTheMeasuredCountsForMultiHeadLosses) {
  ensure_data();
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr x = read_matrix_market(file("x.mtx"));
  for (const char* loss : {"nb", "zinb", "hurdle"}) {
    SCOPED_TRACE(loss);
    const Result r = sae(std::string("train --loss ") + loss +
                         " --data x.mtx --epochs 2 --hidden 16 --latent 4 -o h.ckpt "
                         "--reconstruction h-mode.mtx --decode mode --json --quiet --backend cpu");
    ASSERT_TRUE(succeeded(r));
    const std::string validation_json = json_object(r.out, "validation");
    EXPECT_TRUE(contains(validation_json, "\"decode\": \"mode\"")) << validation_json;
    const Checkpoint c = load_checkpoint(file("h.ckpt"));
    TrainedModel model(*backend, c.config, c.state.parameters);
    const HostCsr counts = model.counts_from_outputs(model.outputs(x), DecodeMode::mode);
    const HostCsr written = read_matrix_market(file("h-mode.mtx"));
    expect_same(written, counts, "train --reconstruction, mode");

    // The written counts are the ones the metrics decode: every wrong entry of every row.
    ReconstructionDetail detail;
    const ReconstructionMetrics m = model.evaluate(x, DecodeMode::mode, &detail);
    const HostDense k = to_dense(written), truth = to_dense(x);
    for (std::int64_t row = 0; row < x.rows; ++row) {
      std::int64_t wrong = 0;
      for (std::int64_t col = 0; col < x.cols; ++col)
        wrong += k.values[row * x.cols + col] != truth.values[row * x.cols + col];
      ASSERT_EQ(wrong, detail.row_wrong_entries[row]) << "row " << row;
    }
    EXPECT_EQ(m.decode, DecodeMode::mode);

    // sae decode writes the same counts, from counts and from codes; eval measures what train
    // printed (the stored threshold included).
    ASSERT_TRUE(
        succeeded(sae("decode --model h.ckpt --data x.mtx --out hd.mtx --decode mode "
                      "--backend cpu")));
    expect_same(read_matrix_market(file("hd.mtx")), counts, "decode --data, mode");
    ASSERT_TRUE(succeeded(sae("encode --model h.ckpt --data x.mtx --out hz.npy --backend cpu")));
    ASSERT_TRUE(
        succeeded(sae("decode --model h.ckpt --latents hz.npy --out hl.mtx --decode mode "
                      "--backend cpu")));
    expect_same(read_matrix_market(file("hl.mtx")), counts, "decode --latents, mode");
    const Result eval = sae("eval --model h.ckpt --decode mode --json --backend cpu");
    ASSERT_TRUE(succeeded(eval));
    EXPECT_EQ(eval.out, validation_json + "\n");

    // The threshold: chosen on the validation rows for hurdle, the default for the others.
    const std::vector<std::int64_t> validation_rows =
        split_rows(x.rows, c.config.train.val_fraction, c.config.train.seed).second;
    if (std::string(loss) == "hurdle") {
      TrainedModel fresh(*backend, c.config, c.state.parameters);
      EXPECT_EQ(c.config.hurdle_threshold,
                choose_hurdle_threshold(fresh, select_rows(x, validation_rows)));
      EXPECT_TRUE(contains(r.out, "\"hurdle_threshold\": ")) << r.out;
      const Result table =
          sae("train --loss hurdle --data x.mtx --epochs 1 --hidden 16 "
              "--latent 4 --quiet --backend cpu");
      ASSERT_TRUE(succeeded(table));
      EXPECT_TRUE(contains(table.out, "hurdle      support threshold ")) << table.out;
    } else {
      EXPECT_EQ(c.config.hurdle_threshold, kDefaultHurdleThreshold);
      EXPECT_FALSE(contains(r.out, "hurdle_threshold")) << r.out;
    }
  }
}

// The exact F1 that sae train reports is the one sae eval of its checkpoint reports: with
// --decode, by that decode; without, by the better on the validation rows of the loss's default
// and mode, which train names (with the other's F1), stores and sae info shows. --decode on eval
// overrides the stored decode, and a checkpoint without one decodes by the loss's default.
TEST_F(Cli, TrainStoresTheDecodeOfItsHeadlineForEval) {
  ensure_data();
  const std::string common =
      " --loss hurdle --data x.mtx --epochs 2 --hidden 16 --latent 4 --json --quiet --no-pca "
      "--backend cpu";
  const Result by_mode = sae("train -o hm.ckpt --decode mode" + common);
  ASSERT_TRUE(succeeded(by_mode));
  const std::string mode_json = json_object(by_mode.out, "validation");
  EXPECT_TRUE(
      contains(by_mode.out, "\"decode\": {\"name\": \"mode\", \"chosen_by\": \"--decode\"}"))
      << by_mode.out;
  const Result eval_mode = sae("eval --model hm.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_mode));
  EXPECT_EQ(eval_mode.out, mode_json + "\n");
  const Result eval_mean = sae("eval --model hm.ckpt --decode mean --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_mean));
  EXPECT_TRUE(contains(eval_mean.out, "\"decode\": \"mean\"")) << eval_mean.out;
  const std::string mean_instead = json_object(by_mode.out, "alternative_decode");
  const Json mean_eval = Json::parse(eval_mean.out, "eval --decode mean");
  EXPECT_EQ(Json::parse(mean_instead, "alternative_decode").at("exact_f1").as_double(),
            mean_eval.at("exact_f1").as_double())
      << "--decode on eval overrides the stored decode";

  const Result chosen = sae("train -o hc.ckpt" + common);
  ASSERT_TRUE(succeeded(chosen));
  const Json summary = Json::parse(chosen.out, "sae train");
  EXPECT_EQ(summary.at("decode").at("chosen_by").as_string(), "validation exact F1");
  const std::string name = summary.at("decode").at("name").as_string();
  EXPECT_EQ(summary.at("validation").at("decode").as_string(), name);
  EXPECT_GE(summary.at("validation").at("exact_f1").as_double(),
            summary.at("alternative_decode").at("exact_f1").as_double());
  EXPECT_NE(summary.at("alternative_decode").at("decode").as_string(), name);
  const Checkpoint c = load_checkpoint(file("hc.ckpt"));
  ASSERT_TRUE(c.config.decode.has_value());
  EXPECT_EQ(decode_mode_name(*c.config.decode), name);
  const Result eval_chosen = sae("eval --model hc.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_chosen));
  EXPECT_EQ(eval_chosen.out, json_object(chosen.out, "validation") + "\n");
  const Result text =
      sae("train -o ht.ckpt --loss hurdle --data x.mtx --epochs 2 "
          "--hidden 16 --latent 4 --quiet --no-pca --backend cpu");
  ASSERT_TRUE(succeeded(text));
  EXPECT_TRUE(contains(text.out, "decode      " + name + ": validation exact-entry F1 "))
      << text.out;
  const Result info = sae("info --model hc.ckpt --backend cpu");
  ASSERT_TRUE(succeeded(info));
  EXPECT_TRUE(contains(info.out, "loss hurdle, decode " + name + " (stored)\n")) << info.out;

  // Without the key (a checkpoint written before the decode was stored), the loss's default.
  Checkpoint old = load_checkpoint(file("hm.ckpt"));
  old.config.decode.reset();
  save_checkpoint(file("old.ckpt"), old);
  const Result eval_old = sae("eval --model old.ckpt --json --backend cpu");
  ASSERT_TRUE(succeeded(eval_old));
  EXPECT_EQ(eval_old.out, eval_mean.out);
  const Result info_old = sae("info --model old.ckpt --backend cpu");
  ASSERT_TRUE(succeeded(info_old));
  EXPECT_TRUE(contains(info_old.out,
                       "loss hurdle, decode mean (the loss's default; the checkpoint stores none)"))
      << info_old.out;
}

// A model that PCA beats on its own validation rows says so, with what to try (issue 18: a first
// hurdle run scored far below PCA with no word); a model already started at PCA does not.
TEST_F(Cli, TrainHintsAtPcaWhenPcaReproducesMore) {
  ensure_data();
  const std::string common =
      " --data x.mtx --loss hurdle --epochs 0 --hidden 16 --latent 4 -o '' --quiet "
      "--backend cpu";
  const std::string hint =
      "hint        pca reproduces more entries exactly than this model: "
      "--pca-anchor starts at pca";
  const Result untrained = sae("train" + common);
  ASSERT_TRUE(succeeded(untrained));
  EXPECT_TRUE(contains(untrained.out, hint)) << untrained.out;
  const Result anchored = sae("train --pca-anchor" + common);
  ASSERT_TRUE(succeeded(anchored));
  EXPECT_FALSE(contains(anchored.out, "hint        pca")) << anchored.out;
}

TEST_F(Cli, HelpAndUsage) {
  const Result help = sae("train --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(contains(help.out, "usage: sae train [options]")) << help.out;
  for (const char* option : {"--clip-norm", "--kl-beta", "--resume", "--decoder-hidden",
                             "--zero-weight", "--huber-delta", "poisson|weighted_mse|huber"})
    EXPECT_TRUE(contains(help.out, option)) << option;
  const Result usage = sae("");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_TRUE(contains(usage.out, "usage: sae <command> [options]")) << usage.out;
  // Every command's description starts in one column, the longest name's.
  for (const char* line :
       {"\n  train       train ", "\n  decompress  rebuild ", "\n  info        build"})
    EXPECT_TRUE(contains(usage.out, line)) << line << " in " << usage.out;
}

// sae --version and sae version print the version and what the build contains, and succeed.
TEST_F(Cli, VersionPrintsTheBuild) {
  const Result dashed = sae("--version");
  ASSERT_TRUE(succeeded(dashed));
  EXPECT_EQ(dashed.out.rfind(std::string("sparseae ") + version() + " (", 0), 0u) << dashed.out;
  EXPECT_TRUE(contains(dashed.out, "\nCUDA")) << dashed.out;
  const Result command = sae("version");
  ASSERT_TRUE(succeeded(command));
  EXPECT_EQ(command.out, dashed.out);
  EXPECT_TRUE(contains(sae("--help").out, "  version     ")) << "sae --help lists it";
}

const char* const kCommands[] = {"train",    "encode",     "decode", "eval", "compare", "pca",
                                 "compress", "decompress", "gen",    "info", "version"};

// Long metavariables (--loss's list) put their description on the next line, in its column;
// long descriptions wrap: no line of any help is wider than 100 columns.
TEST_F(Cli, EveryHelpLineFitsInOneHundredColumns) {
  std::vector<std::string> helps{sae("--help").out};
  for (const char* command : kCommands) {
    const Result help = sae(std::string(command) + " --help");
    ASSERT_TRUE(succeeded(help)) << command;
    helps.push_back(help.out);
  }
  for (const std::string& help : helps)
    for (const std::string& line : lines_of(help)) {
      std::size_t columns = 0;  // UTF-8 characters: every byte but a continuation byte
      for (const char c : line) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      EXPECT_LE(columns, 100u) << line;
    }
  const std::string train = sae("train --help").out;
  EXPECT_TRUE(contains(train, "|hurdle_nb\n" + std::string(29, ' ') + "reconstruction loss"))
      << train;
  EXPECT_TRUE(contains(train, "\n  --epochs N                 epochs (default 20)\n")) << train;
}

// --quiet on every command that opens a backend or writes notices; the device notice only where
// --backend auto was asked for, and never before a usage error.
TEST_F(Cli, EveryCommandTakesQuietAndTheDeviceNoticeOnlyWhenAsked) {
  for (const char* command : kCommands) {
    if (std::string(command) == "version") continue;  // prints nothing on stderr to quieten
    EXPECT_TRUE(contains(sae(std::string(command) + " --help").out, "  --quiet ")) << command;
  }
  const Result plain = sae("info");
  ASSERT_TRUE(succeeded(plain));
  EXPECT_EQ(plain.err, "") << "the default backend choice prints no notice";
  std::string notice;
  make_backend(BackendChoice::automatic, &notice);
  const Result asked = sae("info --backend auto");
  ASSERT_TRUE(succeeded(asked));
  EXPECT_EQ(asked.err, notice.empty() ? "" : "sae: " + notice + "\n");
  const Result quiet = sae("info --backend auto --quiet");
  ASSERT_TRUE(succeeded(quiet));
  EXPECT_EQ(quiet.err, "");
  for (const char* args : {"train --backend auto --bogus", "encode --backend auto --out z.npy",
                           "eval --backend auto", "gen --backend auto",
                           "decode --backend auto --model missing.ckpt --data x.mtx --out d.npy "
                           "--batch many"}) {
    const Result usage = sae(args);
    EXPECT_EQ(usage.exit_code, 2) << args;
    EXPECT_EQ(lines_of(usage.err).size(), 1u) << args << ": " << usage.err;
  }
}

// Without -o, train and pca write sae-model.ckpt and sae-pca.ckpt, but overwrite them
// only with --force; -o '' writes none, and a run resumed from the default file goes on.
TEST_F(Cli, TrainAndPcaDoNotOverwriteTheirDefaultFileUnasked) {
  fs::create_directories(dir_ / "defaults");
  std::ofstream(file("defaults/sae-model.ckpt")) << "mine";
  std::ofstream(file("defaults/sae-pca.ckpt")) << "mine too";
  const std::string train =
      "train --rows 60 --epochs 1 --hidden 8 --latent 2 --no-pca --quiet "
      "--backend cpu";
  const std::string pca = "pca --rows 60 --k 2 --quiet --backend cpu";
  const Result refused = sae(train, "defaults");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err,
            "sae: error: sae train: sae-model.ckpt exists in the working directory: pass "
            "-o PATH (-o '' for none), or --force to overwrite it\n");
  const Result pca_refused = sae(pca, "defaults");
  EXPECT_EQ(pca_refused.exit_code, 1);
  EXPECT_EQ(pca_refused.err,
            "sae: error: sae pca: sae-pca.ckpt exists in the working directory: pass "
            "-o PATH (-o '' for none), or --force to overwrite it\n");
  ASSERT_TRUE(succeeded(sae(train + " -o ''", "defaults")));
  ASSERT_TRUE(succeeded(sae(pca + " -o ''", "defaults")));
  EXPECT_EQ(read_text(file("defaults/sae-model.ckpt")), "mine");
  EXPECT_EQ(read_text(file("defaults/sae-pca.ckpt")), "mine too");

  ASSERT_TRUE(succeeded(sae(train + " --force", "defaults")));
  EXPECT_EQ(load_checkpoint(file("defaults/sae-model.ckpt")).state.epoch, 1);
  ASSERT_TRUE(
      succeeded(sae("train --resume sae-model.ckpt --epochs 2 --quiet --backend cpu", "defaults")));
  EXPECT_EQ(load_checkpoint(file("defaults/sae-model.ckpt")).state.epoch, 2);
  ASSERT_TRUE(succeeded(sae(pca + " --force", "defaults")));
  EXPECT_EQ(load_checkpoint(file("defaults/sae-pca.ckpt")).config.model.latent, 2);
}

// train and pca write their model with -o/--out, as every command names its output; --checkpoint,
// the name before, still works for a release and says so in one line on stderr.
TEST_F(Cli, TrainAndPcaWriteTheirModelWithOutAndStillReadTheOldName) {
  const std::string train =
      "train --rows 60 --epochs 1 --hidden 8 --latent 2 --no-pca --quiet --backend cpu";
  const std::string pca = "pca --rows 60 --k 2 --quiet --backend cpu";
  for (const std::string out : {"-o", "--out"}) {
    const Result trained = sae(train + " " + out + " t" + out + ".ckpt");
    ASSERT_TRUE(succeeded(trained));
    EXPECT_EQ(trained.err, "");
    EXPECT_EQ(load_checkpoint(file("t" + out + ".ckpt")).state.epoch, 1);
    ASSERT_TRUE(succeeded(sae(pca + " " + out + " p" + out + ".ckpt")));
    EXPECT_EQ(load_checkpoint(file("p" + out + ".ckpt")).config.model.latent, 2);
  }
  const Result old_train = sae(train + " --checkpoint old.ckpt");
  ASSERT_TRUE(succeeded(old_train));
  EXPECT_EQ(old_train.err,
            "sae train: --checkpoint is now --out; the old name works until the next release\n");
  EXPECT_EQ(load_checkpoint(file("old.ckpt")).state.epoch, 1);
  const Result old_pca = sae(pca + " --checkpoint=old-pca.ckpt");
  ASSERT_TRUE(succeeded(old_pca));
  EXPECT_EQ(old_pca.err,
            "sae pca: --checkpoint is now --out; the old name works until the next release\n");
  EXPECT_EQ(load_checkpoint(file("old-pca.ckpt")).config.model.latent, 2);
}

// sae gen seeds with 1 by default, as train does; 42 gives the embedded dataset's rows.
TEST_F(Cli, GenSeedsWithOneAsTrainDoes) {
  const Result plain = sae("gen --rows 40 --out seed-default.mtx");
  ASSERT_TRUE(succeeded(plain));
  EXPECT_TRUE(contains(plain.err, "sae gen: wrote seed-default.mtx")) << plain.err;
  const Result quiet = sae("gen --rows 40 --seed 1 --out seed-1.mtx --quiet");
  ASSERT_TRUE(succeeded(quiet));
  EXPECT_EQ(quiet.err, "");
  ASSERT_TRUE(succeeded(sae("gen --rows 40 --seed 42 --out seed-42.mtx --quiet")));
  EXPECT_EQ(read_text(file("seed-default.mtx")), read_text(file("seed-1.mtx")));
  EXPECT_NE(read_text(file("seed-default.mtx")), read_text(file("seed-42.mtx")));
  TopicDataConfig embedded;
  embedded.rows = 40;
  expect_same(read_matrix_market(file("seed-42.mtx")), generate_topic_counts(embedded),
              "gen --seed 42 vs the embedded dataset");
}

TEST_F(Cli, CompareTrainsEveryLossOnTheSameSplit) {
  ensure_data();
  const std::string common =
      "compare --data x.mtx --epochs 1 --hidden 16 --latent 4 --backend cpu --quiet";
  const Result table = sae(common + " --losses mse,poisson,bce");
  ASSERT_TRUE(succeeded(table));
  EXPECT_EQ(table.err, "") << "--quiet prints nothing on stderr";
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 6u) << "title, header, a row per loss and pca: " << table.out;
  EXPECT_EQ(lines[0], "validation rows (30), one row per loss:");
  for (const char* column : {"loss", "decode", "nz exact", "supp F1", "nll b/row", "samples/s"})
    EXPECT_TRUE(contains(lines[1], column)) << column << " missing from " << lines[1];
  EXPECT_EQ(lines[2].rfind("mse ", 0), 0u) << lines[2];
  EXPECT_TRUE(contains(lines[2], " round ")) << lines[2];
  EXPECT_EQ(lines[3].rfind("poisson ", 0), 0u) << lines[3];
  EXPECT_TRUE(contains(lines[3], " mean ")) << lines[3];
  EXPECT_EQ(lines[4].rfind("bce (scale max) ", 0), 0u) << lines[4];
  EXPECT_EQ(lines[5].rfind("pca ", 0), 0u) << lines[5];
  EXPECT_TRUE(contains(lines[5], " round ")) << lines[5];
  const Result without_pca = sae(common + " --losses mse --no-pca");
  ASSERT_TRUE(succeeded(without_pca));
  EXPECT_EQ(lines_of(without_pca.out).size(), 3u) << without_pca.out;

  // The JSON holds the numbers a lone sae train of the same loss and settings gives.
  const Result json = sae(common + " --losses mse,huber --json");
  ASSERT_TRUE(succeeded(json));
  ASSERT_EQ(lines_of(json.out).size(), 1u) << json.out;
  EXPECT_EQ(json.out.rfind("{\"backend\": \"cpu\", \"losses\": [{\"loss\": \"mse\", \"scale\": "
                           "\"none\", \"epochs\": 1, ",
                           0),
            0u)
      << json.out;
  EXPECT_TRUE(contains(json.out, "{\"loss\": \"huber\", ")) << json.out;
  // PCA with the latent width on the same validation rows: what sae pca reports for them.
  const Result pca = sae("pca --data x.mtx --k 4 --backend cpu --quiet --json -o ''");
  ASSERT_TRUE(succeeded(pca));
  EXPECT_TRUE(contains(json.out, "]" + std::string(", \"pca\": {\"components\": 4, ")))
      << json.out;
  EXPECT_EQ(json_object(json.out.substr(json.out.find("\"pca\": ")), "validation"),
            json_object(pca.out, "validation"));
  const Result alone =
      sae("train --data x.mtx --epochs 1 --hidden 16 --latent 4 --backend cpu "
          "--quiet --json -o '' --loss huber");
  ASSERT_TRUE(succeeded(alone));
  const std::string huber = json.out.substr(json.out.find("{\"loss\": \"huber\""));
  EXPECT_EQ(json_object(huber, "validation"), json_object(alone.out, "validation"));
}

TEST_F(Cli, CompareWritesAnHtmlReportWithImagesForSquareData) {
  // 80 rows of 16 columns (4 x 4 images).
  HostDense dense{80, 16, std::vector<float>(80 * 16, 0.0f)};
  for (std::size_t i = 0; i < dense.values.size(); ++i)
    if (i % 3 == 0) dense.values[i] = static_cast<float>(1 + i % 5);
  write_matrix_market(file("square.mtx"), to_csr(dense), true);
  const Result r =
      sae("compare --data square.mtx --epochs 2 --hidden 8 --latent 4 --backend cpu "
          "--losses mse,poisson --report 'r&eport.html' --quiet");
  ASSERT_TRUE(succeeded(r));
  const std::string html = read_text(file("r&eport.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  std::size_t charts = 0;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++charts;
  EXPECT_EQ(charts, 2u + 4u + 3u) << "training curves per loss, per column, per row, latent "
                                     "firing, the image grid, the codes of each loss and of pca";
  EXPECT_TRUE(contains(html, "aria-label=\"originals and reconstructions\""));
  EXPECT_TRUE(contains(html, "4x4 images"));
  EXPECT_TRUE(contains(html, "square.mtx"));
  EXPECT_FALSE(contains(html, "http"));
  EXPECT_TRUE(contains(html, "<tr><th scope=\"row\">mse</th><td>round</td>")) << html;
  EXPECT_TRUE(contains(html, "<tr><th scope=\"row\">poisson</th><td>mean</td>")) << html;
  EXPECT_TRUE(contains(html, "<tr><th scope=\"row\">pca</th><td>round</td>")) << html;

  // The table's percentages are the printed ones.
  const Result table =
      sae("compare --data square.mtx --epochs 2 --hidden 8 --latent 4 "
          "--backend cpu --losses mse,poisson --quiet");
  ASSERT_TRUE(succeeded(table));
  const std::vector<std::string> lines = lines_of(table.out);
  ASSERT_EQ(lines.size(), 5u) << "title, header, two losses and pca: " << table.out;
  std::istringstream mse_row(lines[2]);
  std::string name, decode, exact;
  mse_row >> name >> decode >> exact;
  ASSERT_EQ(exact.back(), '%');
  EXPECT_TRUE(contains(html, "<td>round</td><td>" + exact.substr(0, exact.size() - 1) + "</td>"))
      << exact;

  // A report that cannot be written fails and leaves nothing.
  const Result bad =
      sae("compare --data square.mtx --epochs 1 --hidden 8 --latent 4 "
          "--backend cpu --losses mse --report missing/r.html --quiet");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_FALSE(fs::exists(file("missing")));
}

TEST_F(Cli, TrainWritesAnHtmlReportOfItsRun) {
  ensure_data();
  const Result r =
      sae("train --data x.mtx --epochs 2 --hidden 16 --latent 4 --backend cpu "
          "-o '' --json --quiet --report t.html");
  ASSERT_TRUE(succeeded(r));
  const std::string html = read_text(file("t.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  std::size_t charts = 0;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++charts;
  EXPECT_EQ(charts, 4u + 2u) << "training curves, per column, per row, latent firing, the codes "
                                "of the model and of pca; 512 columns are no image";
  EXPECT_TRUE(contains(html, "aria-label=\"latent firing frequencies\""));
  EXPECT_FALSE(contains(html, "http"));
  // The run's whole configuration: the command that made it, its training settings, the version.
  EXPECT_TRUE(contains(html,
                       "<li>command: sae train --data x.mtx --epochs 2 --hidden 16 --latent 4 "
                       "--backend cpu -o &#39;&#39; --json --quiet --report t.html</li>"))
      << html.substr(0, 2000);
  EXPECT_TRUE(contains(html, "<li>training: loss mse, decode round, 2 epochs, batch 256, lr "));
  EXPECT_TRUE(contains(html, "<li>sparseae: " + std::string(version()) + "</li>"));
  // The validation rows' lossless sizes: sae compress keeps, in its one block, the smaller of the
  // model's coding and the order-0 code.
  const auto size_of = [&](const std::string& coder) {
    const std::string cell = "<tr><th scope=\"row\">" + coder + "</th><td>";
    const std::size_t found = html.find(cell);
    return found == std::string::npos ? -1.0 : std::stod(html.substr(found + cell.size()));
  };
  const double compressed = size_of("sae compress with this model");
  const double model_coding = size_of("this model&#39;s coding of every block");
  const double order0 = size_of("order-0 per column");
  ASSERT_GT(compressed, 0) << html;
  ASSERT_GT(model_coding, 0);
  ASSERT_GT(order0, 0);
  EXPECT_NEAR(compressed, std::min(model_coding, order0), 0.011);
  EXPECT_GT(size_of("raw CSR (int32 index + value)"), order0);
  // The row holds the numbers the JSON printed.
  const std::string validation = json_object(r.out, "validation");
  const std::size_t at = validation.find("\"exact_f1\": ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const double exact = std::stod(validation.substr(at + 12));
  char cells[128];
  std::snprintf(cells, sizeof cells, "<tr><th scope=\"row\">mse</th><td>round</td><td>%.2f</td>",
                100 * exact);
  EXPECT_TRUE(contains(html, cells)) << cells;
  // The PCA baseline's row, with the numbers of its JSON.
  const std::string pca = json_object(r.out.substr(r.out.find("\"pca\": ")), "validation");
  const std::size_t pca_at = pca.find("\"exact_f1\": ");
  ASSERT_NE(pca_at, std::string::npos) << r.out;
  std::snprintf(cells, sizeof cells, "<tr><th scope=\"row\">pca</th><td>round</td><td>%.2f</td>",
                100 * std::stod(pca.substr(pca_at + 12)));
  EXPECT_TRUE(contains(html, cells)) << cells;
}

// sae pca fits on the training rows of sae train's split, prints the metrics sae eval prints
// for its model file, and writes codes and reconstructions as encode and decode do.
TEST_F(Cli, PcaReportsLikeEvalAndWritesAModelTheModelCommandsRun) {
  ensure_data();
  const Result table =
      sae("pca --data x.mtx --k 8 --backend cpu -o p.ckpt "
          "--latents pz.npy --reconstruction pr.mtx");
  ASSERT_TRUE(succeeded(table));
  EXPECT_TRUE(contains(table.err, "pca: 8 components (covariance solver, backend cpu) fitted on "
                                  "270 rows in "))
      << table.err;
  const Result eval = sae("eval --model p.ckpt --backend cpu");
  ASSERT_TRUE(succeeded(eval));
  // The same rows, the same metrics, the same table; eval names the file by its absolute path.
  EXPECT_EQ(table.out.substr(table.out.find('\n')), eval.out.substr(eval.out.find('\n')));
  EXPECT_EQ(lines_of(table.out)[0], "validation rows of x.mtx (30 rows), counts decoded by round:");

  const Result json = sae("pca --data x.mtx --k 8 --backend cpu -o '' --json --quiet");
  ASSERT_TRUE(succeeded(json));
  EXPECT_EQ(json.err, "");
  EXPECT_EQ(json.out.rfind("{\"components\": 8, \"solver\": \"covariance\", \"backend\": \"cpu\", "
                           "\"fitted_rows\": 270, ",
                           0),
            0u)
      << json.out;
  const Result eval_json = sae("eval --model p.ckpt --backend cpu --json");
  EXPECT_EQ(json_object(json.out, "validation") + "\n", eval_json.out);
  // The same PCA is the baseline sae train prints beside its model.
  const Result train =
      sae("train --data x.mtx --epochs 1 --hidden 16 --latent 8 --backend cpu "
          "-o '' --json --quiet");
  ASSERT_TRUE(succeeded(train));
  EXPECT_EQ(json_object(train.out.substr(train.out.find("\"pca\": ")), "validation"),
            json_object(json.out, "validation"));
  const Result no_pca =
      sae("train --data x.mtx --epochs 1 --hidden 16 --latent 8 --backend cpu "
          "-o '' --json --quiet --no-pca");
  ASSERT_TRUE(succeeded(no_pca));
  EXPECT_FALSE(contains(no_pca.out, "\"pca\"")) << no_pca.out;

  // Codes and counts are what encode and decode write from the model file.
  ASSERT_TRUE(succeeded(sae("encode --model p.ckpt --data x.mtx --out pz2.npy --backend cpu")));
  expect_same(read_npy(file("pz.npy"), NpyValues::finite),
              read_npy(file("pz2.npy"), NpyValues::finite), "pca --latents vs encode");
  ASSERT_TRUE(succeeded(sae("decode --model p.ckpt --latents pz.npy --out pr2.mtx --backend cpu")));
  expect_same(read_matrix_market(file("pr.mtx")), read_matrix_market(file("pr2.mtx")),
              "pca --reconstruction vs decode");
  const HostDense codes = read_npy(file("pz.npy"), NpyValues::finite);
  EXPECT_EQ(codes.rows, 300);
  EXPECT_EQ(codes.cols, 8);

  // Dense input: the same rows as .npy fit the same PCA (the dense path, to float rounding).
  write_npy(file("x.npy"), to_dense(read_matrix_market(file("x.mtx"))));
  const Result dense =
      sae("pca --data x.npy --k 8 --backend cpu -o '' --quiet "
          "--latents dz.npy");
  ASSERT_TRUE(succeeded(dense));
  const HostDense dense_codes = read_npy(file("dz.npy"), NpyValues::finite);
  ASSERT_EQ(dense_codes.values.size(), codes.values.size());
  for (std::size_t i = 0; i < codes.values.size(); ++i)
    ASSERT_NEAR(dense_codes.values[i], codes.values[i], 1e-3) << "code " << i;

  // Wide data takes the randomized solver.
  ASSERT_TRUE(succeeded(sae("gen --rows 60 --cols 2100 --topics 4 --nnz 10 --out wide.mtx")));
  const Result wide = sae("pca --data wide.mtx --k 3 --backend cpu -o '' --json --quiet");
  ASSERT_TRUE(succeeded(wide));
  EXPECT_TRUE(contains(wide.out, "\"solver\": \"randomized\"")) << wide.out;
}

TEST_F(Cli, PcaRefusesBadInputInOneLine) {
  ensure_data();
  const std::pair<const char*, const char*> cases[] = {
      {"pca --data x.mtx --k 0", "sae: error: sae pca: --k must be positive\n"},
      {"pca --data x.mtx --k 513 --backend cpu --quiet",
       "sae: error: sae pca: --k 513 exceeds the data's 512 columns\n"},
      {"pca --data x.mtx --solver exact",
       "sae: error: unknown PCA solver 'exact' (auto, covariance, randomized)\n"},
      {"pca --data x.mtx --val-frac 1", "sae: error: sae pca: --val-frac must lie in [0, 1)\n"},
      {"pca --data x.mtx --block 0", "sae: error: sae pca: --block must be positive\n"},
      {"pca --data missing.mtx --backend cpu", nullptr}};
  for (const auto& [args, message] : cases) {
    const Result r = sae(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << args << ": " << r.err;
    if (message != nullptr) {
      EXPECT_EQ(r.err, message) << args;
    }
  }
  const Result bogus = sae("pca --bogus");
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_EQ(bogus.err, "sae: error: sae pca: unknown option '--bogus' (see sae pca --help)\n");
  const Result help = sae("pca --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* part : {"usage: sae pca [options]", "--k", "--solver", "-o, --out PATH"})
    EXPECT_TRUE(contains(help.out, part)) << part;
  EXPECT_TRUE(contains(sae("--help").out, "  pca  "));
  EXPECT_TRUE(contains(sae("train --help").out, "--no-pca"));
  EXPECT_TRUE(contains(sae("compare --help").out, "--no-pca"));
}

TEST_F(Cli, CompareRefusesBadOptionsInOneLine) {
  ensure_data();
  const std::pair<const char*, const char*> cases[] = {
      {"compare --losses mse,mse --data x.mtx",
       "sae: error: compare: the loss mse is listed twice\n"},
      {"compare --losses mse,frob --data x.mtx", nullptr},
      {"compare --losses mse, --data x.mtx",
       "sae: error: sae compare: --losses: 'mse,' is not a comma-separated list of losses\n"},
      {"compare --decode mode --data x.mtx", nullptr},
      {"compare --val-frac 0 --data x.mtx", nullptr}};
  for (const auto& [args, message] : cases) {
    const Result r = sae(args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << args << ": " << r.err;
    if (message != nullptr) {
      EXPECT_EQ(r.err, message) << args;
    }
  }
  const Result bogus = sae("compare --bogus 1");
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_EQ(bogus.err,
            "sae: error: sae compare: unknown option '--bogus' (see sae compare --help)\n");
  const Result help = sae("compare --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* part : {"usage: sae compare [options]", "--losses", "--report", "scale max",
                           "mse,poisson,weighted_mse,huber"})
    EXPECT_TRUE(contains(help.out, part)) << part << ": " << help.out;
  EXPECT_TRUE(contains(sae("--help").out, "  compare  "));
}

// Lossless mode through the binary: a round trip that gives the counts back exactly (streamed
// from a sorted .mtx, or read whole from an unsorted one), and the size table whose model row is
// the file's size.
// sae train --rate-lambda: an identity latent and the loss kept by its validation loss (the
// description length) unasked; its codes are integers, and sae compress stores them under the
// model's prior by default (--latent-bits auto), exactly.
TEST_F(Cli, RateAwareModelStoresIntegerCodesUnderItsPrior) {
  ensure_data();
  const Result train =
      sae("train --data x.mtx --epochs 3 --hidden 32 --latent 8 --loss nb --rate-lambda 1 "
          "-o rate.ckpt --latents rate-z.csv --backend cpu --quiet");
  ASSERT_TRUE(succeeded(train)) << train.err;
  EXPECT_TRUE(contains(train.out, "latent identity")) << train.out;
  EXPECT_TRUE(contains(train.out, "latent prior")) << train.out;
  EXPECT_TRUE(contains(train.out, "the lowest validation loss")) << train.out;
  EXPECT_FALSE(contains(train.out, "hint        pca")) << "a run trained for size gets no F1 hint";
  std::ifstream codes(file("rate-z.csv"));
  std::int64_t values = 0;
  for (std::string line; std::getline(codes, line);) {
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) {
      const double v = std::stod(field);
      EXPECT_EQ(v, std::nearbyint(v)) << "a code " << field;
      EXPECT_NE(field, "-0") << "codes print as integers";
      ++values;
    }
  }
  EXPECT_GT(values, 0);
  ASSERT_TRUE(
      succeeded(sae("compress --model rate.ckpt --data x.mtx -o rate.sae --backend cpu "
                    "--block-rows 70 --batch 9")));
  ASSERT_TRUE(succeeded(
      sae("decompress --in rate.sae --model rate.ckpt -o rate.mtx --backend cpu --batch 4")));
  expect_same(read_matrix_market(file("rate.mtx")), read_matrix_market(file("x.mtx")),
              "decompressed counts");
  ASSERT_TRUE(
      succeeded(sae("compress --model rate.ckpt --data x.mtx -o prior.sae --backend "
                    "cpu --block-rows 70 --latent-bits prior --quiet")));
  EXPECT_EQ(read_text(file("prior.sae")), read_text(file("rate.sae")))
      << "--latent-bits auto is the prior for a model that has one";
  ASSERT_TRUE(
      succeeded(sae("compress --model rate.ckpt --data x.mtx -o float.sae --backend "
                    "cpu --block-rows 70 --latent-bits 32 --quiet")));
  EXPECT_NE(read_text(file("float.sae")), read_text(file("rate.sae")));
}

TEST_F(Cli, CompressDecompressRoundTripAndStatsTable) {
  ASSERT_TRUE(succeeded(trained()));
  const Result compressed = sae(
      "compress --model m.ckpt --data x.mtx -o x.sae --backend cpu --batch 7 --block-rows 61 "
      "--latent-bits 16");
  ASSERT_TRUE(succeeded(compressed));
  const auto file_bytes = static_cast<double>(fs::file_size(file("x.sae")));
  char per_row[32];
  std::snprintf(per_row, sizeof per_row, "%.2f", file_bytes / 300.0);
  EXPECT_TRUE(contains(compressed.out, "x.sae: 300 rows, " +
                                           std::to_string(static_cast<long long>(file_bytes)) +
                                           " bytes, " + per_row + " bytes per row"))
      << compressed.out;
  ASSERT_TRUE(succeeded(
      sae("decompress --in x.sae --model m.ckpt -o y.mtx --backend cpu --batch 5")));
  expect_same(read_matrix_market(file("y.mtx")), read_matrix_market(file("x.mtx")),
              "decompressed counts");

  // Entries out of row order: read whole, with a note, and the same counts come back.
  std::ifstream in(file("x.mtx"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::ofstream reversed(file("reversed.mtx"));
  reversed << lines[0] << "\n" << lines[1] << "\n";
  for (std::size_t i = lines.size(); i-- > 2;) reversed << lines[i] << "\n";
  reversed.close();
  const Result unsorted = sae("compress --model m.ckpt --data reversed.mtx -o r.sae --backend cpu");
  ASSERT_TRUE(succeeded(unsorted));
  EXPECT_TRUE(contains(unsorted.err, "not sorted by row; reading the whole file instead"))
      << unsorted.err;
  ASSERT_TRUE(succeeded(sae("decompress --in r.sae --model m.ckpt -o r.mtx --backend cpu")));
  expect_same(read_matrix_market(file("r.mtx")), read_matrix_market(file("x.mtx")),
              "decompressed from the unsorted file");

  // A count likelihood: the table, with the model's NLL, and its model row the file's size.
  ASSERT_TRUE(
      succeeded(sae("train --data x.mtx --epochs 1 --hidden 16 --latent 4 --loss poisson "
                    "-o p.ckpt --quiet --backend cpu")));
  const Result stats = sae(
      "compress --model p.ckpt --data x.mtx -o p.sae --backend cpu --latent-bits 8 --stats");
  ASSERT_TRUE(succeeded(stats));
  for (const char* part :
       {"raw CSR (int32 index + value)", "gzip -9 of the .mtx", "zstd -19 of the .mtx",
        "xz -9 of the .mtx", "order-0 per column", "model coding of every block",
        "PCA (k = 4, 8-bit) codes + residual", "model codes + residual (p.sae)",
        "model NLL (ideal residual code)", "bits/row"})
    EXPECT_TRUE(contains(stats.out, part)) << part << ": " << stats.out;
  // An mse model's float codes never pay for themselves: the hint names rate-aware training.
  EXPECT_TRUE(contains(stats.out, "hint: this model's codes cost more than they save"))
      << stats.out;
  std::snprintf(per_row, sizeof per_row, "%.2f",
                static_cast<double>(fs::file_size(file("p.sae"))) / 300.0);
  const std::size_t model_row = stats.out.find("model codes + residual (p.sae)");
  ASSERT_NE(model_row, std::string::npos);
  const std::string row = stats.out.substr(model_row, stats.out.find('\n', model_row) - model_row);
  std::istringstream fields(row.substr(row.find(')') + 1));
  std::string value;
  fields >> value;
  EXPECT_EQ(value, per_row) << "the size table's model row is the file's size: " << row;
  ASSERT_TRUE(succeeded(sae("decompress --in p.sae --model p.ckpt -o p.mtx --backend cpu")));
  expect_same(read_matrix_market(file("p.mtx")), read_matrix_market(file("x.mtx")),
              "decompressed poisson counts");

  // The order-0 codec needs no model either way; a model-coded file does.
  ASSERT_TRUE(succeeded(sae("compress --codec order0 --data x.mtx -o o.sae --block-rows 61")));
  ASSERT_TRUE(succeeded(sae("decompress --in o.sae -o o.mtx")));
  expect_same(read_matrix_market(file("o.mtx")), read_matrix_market(file("x.mtx")),
              "decompressed order-0 counts");
  const Result no_model = sae("decompress --in p.sae -o none.mtx");
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_TRUE(contains(no_model.err, "p.sae: compressed with a model (--codec model)"))
      << no_model.err;
  EXPECT_FALSE(fs::exists(file("none.mtx")));

  // The order-0 code of the model's training rows: in the table, a file without tables that
  // needs the model back, and refused in one line for a model without the histogram (PCA's).
  EXPECT_TRUE(contains(stats.out, "order-0 of the training rows ")) << stats.out;
  const Result training =
      sae("compress --codec order0-training --model p.ckpt --data x.mtx -o t.sae --block-rows 61");
  ASSERT_TRUE(succeeded(training));
  EXPECT_TRUE(contains(training.out, "tables 0.00,")) << training.out;
  ASSERT_TRUE(succeeded(sae("decompress --in t.sae --model p.ckpt -o t.npz --backend cpu")));
  expect_same(read_matrix(file("t.npz")).csr, read_matrix_market(file("x.mtx")),
              "decompressed order-0 counts of the training tables");
  const Result needs_model = sae("decompress --in t.sae -o none.mtx");
  EXPECT_EQ(needs_model.exit_code, 1);
  EXPECT_TRUE(contains(needs_model.err,
                       "(--codec order0-training): decompress with that "
                       "checkpoint (--model)"))
      << needs_model.err;
  ASSERT_TRUE(succeeded(sae("pca --data x.mtx --k 3 -o pca.ckpt --quiet --backend cpu")));
  const Result pca =
      sae("compress --codec order0-training --model pca.ckpt --data x.mtx -o "
          "none.sae --backend cpu");
  EXPECT_EQ(pca.exit_code, 1);
  EXPECT_EQ(lines_of(pca.err).size(), 1u) << pca.err;
  EXPECT_TRUE(contains(pca.err,
                       "sae compress: --codec order0-training: pca.ckpt holds no count "
                       "histogram of its training rows"))
      << pca.err;
  EXPECT_FALSE(fs::exists(file("none.sae")));
  EXPECT_FALSE(fs::exists(file("none.mtx")));
}

TEST_F(Cli, CompressAndDecompressRefuseBadInputWithOneLine) {
  ASSERT_TRUE(succeeded(trained()));
  ASSERT_TRUE(succeeded(sae("compress --model m.ckpt --data x.mtx -o good.sae --backend cpu")));
  const std::string good = read_text(file("good.sae"));
  std::ofstream(file("short.sae"), std::ios::binary) << good.substr(0, good.size() - 10);
  ASSERT_TRUE(
      succeeded(sae("train --data x.mtx --epochs 1 --hidden 16 --latent 4 "
                    "-o other.ckpt --quiet --backend cpu")));
  const std::pair<const char*, const char*> cases[] = {
      {"decompress --in short.sae --model m.ckpt -o out.mtx --backend cpu", "short.sae: "},
      {"decompress --in good.sae --model other.ckpt -o out.mtx --backend cpu",
       "good.sae: compressed with another model"},
      {"decompress --in missing.sae --model m.ckpt -o out.mtx --backend cpu",
       "missing.sae: cannot open"},
      {"compress --model m.ckpt --data x.mtx -o out.sae --latent-bits 12",
       "--latent-bits must be auto, prior, 32, 16 or 8"},
      {"compress --model m.ckpt --data x.mtx -o out.sae --latent-bits prior",
       "--latent-bits prior needs a model trained with --rate-lambda"},
      {"compress --data x.mtx -o out.sae", "sae compress: --model: is required"}};
  for (const auto& [args, message] : cases) {
    const Result r = sae(args);
    EXPECT_EQ(r.exit_code, contains(message, "is required") ? 2 : 1) << args;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << args << ": " << r.err;
    EXPECT_TRUE(contains(r.err, message)) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(file("out.mtx"))) << args << ": no partial output";
    EXPECT_FALSE(fs::exists(file("out.sae"))) << args << ": no partial output";
  }
}
}  // namespace
}  // namespace sparseae
