#pragma once

namespace sparseae {

// "MAJOR.MINOR.PATCH" of this library.
const char* version();

}  // namespace sparseae
