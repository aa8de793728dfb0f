# How dllm-serve finds libtorch. scripts/find-libtorch.mjs resolves LIBTORCH_ROOT (env LIBTORCH, Python's torch,
# or a project-local copy unpacked from a torch wheel) and passes it; find_package does the rest.
if(NOT LIBTORCH_ROOT)
  message(FATAL_ERROR "LIBTORCH_ROOT is not set: build with `npm run build:native`, which finds libtorch")
endif()
list(APPEND CMAKE_PREFIX_PATH "${LIBTORCH_ROOT}/share/cmake")
# A CUDA libtorch's config appends -gencode flags for the architectures it picks to CMAKE_CUDA_FLAGS, probing the
# GPU with a test program unless TORCH_CUDA_ARCH_LIST names them (and, with no GPU, picking some that CUDA 13 no
# longer compiles). Our kernels name their own (CUDA_ARCHITECTURES in CMakeLists.txt): skip the probe and drop
# torch's flags.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
find_package(Torch REQUIRED)
if(CMAKE_CUDA_FLAGS)
  string(REGEX REPLACE "-gencode +arch=[^ ]*" "" CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS}")
endif()
set(LIBTORCH_LIB_DIR "${LIBTORCH_ROOT}/lib")

# Whether this libtorch was built with CUDA: torch's cmake config sets CUDA_FOUND / defines torch_cuda.
if(TARGET torch_cuda)
  set(LIBTORCH_HAS_CUDA ON)
else()
  set(LIBTORCH_HAS_CUDA OFF)
endif()
message(STATUS "libtorch ${Torch_VERSION} at ${LIBTORCH_ROOT} (CUDA: ${LIBTORCH_HAS_CUDA})")

# Links a target against libtorch so that it loads with no LD_LIBRARY_PATH: RUNPATH is exactly libtorch's lib/
# (CMake's default would add entries from torch's MKL config), and -z now turns an ABI mismatch into a load error.
function(link_libtorch target)
  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES})
  target_include_directories(${target} SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
  set_target_properties(${target} PROPERTIES
    SKIP_BUILD_RPATH OFF
    BUILD_WITH_INSTALL_RPATH ON
    INSTALL_RPATH "${LIBTORCH_LIB_DIR}"
    INSTALL_RPATH_USE_LINK_PATH OFF)
  target_link_options(${target} PRIVATE "-Wl,-z,now" "-Wl,--disable-new-dtags" "-Wl,--no-as-needed")
endfunction()
