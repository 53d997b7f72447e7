#===- UnisparseInstall.cmake - the CMake package and the wheel's layout ---===#
#
# `cmake --install build --prefix P` installs what an embedder needs:
#   P/include/unisparse/...        headers with the generated .inc files
#   P/include/unisparse-c/...      the C API
#   P/lib/libMLIRUnisparse*.a      dialect, transforms, conversions, pipelines
#   P/lib/libUnisparseCAPI.so      the C API library
#   P/lib/libunisparse_runtime.so  the runtime (and P/include/unisparse/runtime)
#   P/bin/unisparse-{opt,compile}
#   P/lib/cmake/unisparse/UniSparseConfig.cmake (+ Version, Targets)
# with the targets exported as UniSparse::<name>. The package links MLIR the
# way this build did (libMLIR.so with -DMLIR_LINK_MLIR_DYLIB=ON, as
# scripts/setup.sh configures it), so a consumer must link MLIR the same way:
# UniSparseConfig.cmake says which in UNISPARSE_MLIR_LINK_MLIR_DYLIB.
#
# The wheel (UNISPARSE_STATIC_LLVM, scikit-build-core) installs only the
# component `wheel`: the tools and the runtime under unisparse/_toolchain.
#
#===----------------------------------------------------------------------===#

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UNISPARSE_INSTALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/unisparse)
# The installed tools and C API find libMLIR.so / libLLVM.so where this build
# found them (Debian's prefix is not on the loader's default path).
if(NOT UNISPARSE_STATIC_LLVM)
  set(CMAKE_INSTALL_RPATH "\$ORIGIN/../${CMAKE_INSTALL_LIBDIR};${LLVM_LIBRARY_DIR}")
endif()

# The generated header with the version (tools' --version, embedders).
configure_file(${PROJECT_SOURCE_DIR}/include/unisparse/Version.h.in
               ${PROJECT_BINARY_DIR}/include/unisparse/Version.h @ONLY)

# Records a compiler library (add_mlir_*_library(... DISABLE_INSTALL)) for
# the package: exported, with the installed include directory.
function(unisparse_install_library name)
  target_include_directories(${name} INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  set_property(GLOBAL APPEND PROPERTY UNISPARSE_EXPORTED_TARGETS ${name})
endfunction()

# Records a tool: exported in the package, and copied into the wheel.
function(unisparse_install_tool name)
  set_property(GLOBAL APPEND PROPERTY UNISPARSE_EXPORTED_TARGETS ${name})
  if(UNISPARSE_WHEEL_TOOLCHAIN_DIR)
    install(TARGETS ${name} RUNTIME
            DESTINATION ${UNISPARSE_WHEEL_TOOLCHAIN_DIR}/bin COMPONENT wheel)
  endif()
endfunction()

# The install rules and the package files; called once every target exists.
function(unisparse_install_package)
  if(UNISPARSE_WHEEL_TOOLCHAIN_DIR)
    install(TARGETS unisparse_runtime LIBRARY
            DESTINATION ${UNISPARSE_WHEEL_TOOLCHAIN_DIR}/lib COMPONENT wheel)
  endif()
  if(UNISPARSE_STATIC_LLVM)
    # The static tools are for the wheel; an embedder links MLIR itself.
    return()
  endif()
  get_property(_targets GLOBAL PROPERTY UNISPARSE_EXPORTED_TARGETS)
  install(TARGETS ${_targets} EXPORT UniSparseTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/unisparse
                    ${PROJECT_SOURCE_DIR}/include/unisparse-c
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.td")
  install(DIRECTORY ${PROJECT_BINARY_DIR}/include/unisparse
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.inc"
          PATTERN "CMakeFiles" EXCLUDE)
  install(EXPORT UniSparseTargets NAMESPACE UniSparse::
          DESTINATION ${UNISPARSE_INSTALL_CMAKE_DIR})

  set(UNISPARSE_MLIR_LINK_MLIR_DYLIB ${MLIR_LINK_MLIR_DYLIB})
  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/UniSparseConfig.cmake.in
    ${PROJECT_BINARY_DIR}/cmake/UniSparseConfig.cmake
    INSTALL_DESTINATION ${UNISPARSE_INSTALL_CMAKE_DIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_BINDIR)
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/cmake/UniSparseConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/cmake/UniSparseConfig.cmake
                ${PROJECT_BINARY_DIR}/cmake/UniSparseConfigVersion.cmake
          DESTINATION ${UNISPARSE_INSTALL_CMAKE_DIR})
endfunction()
