#pragma once
// Everything a program linking libsparseae.a uses.
#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/version.hpp"
