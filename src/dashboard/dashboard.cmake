# egressd-dashboard: the web service of docs/dashboard.md. It reads Redis
# only and reuses the core's Redis URL parser and JSON writer.
include(GNUInstallDirs)
file(GLOB EGRESSD_DASHBOARD_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
add_executable(egressd-dashboard ${EGRESSD_DASHBOARD_SRC})
target_compile_definitions(egressd-dashboard PRIVATE
  EGRESSD_DASHBOARD_DIR="${CMAKE_INSTALL_FULL_DATADIR}/egressd/dashboards")
target_link_libraries(egressd-dashboard PRIVATE egressd_core PkgConfig::EVENT PkgConfig::HIREDIS)
install(TARGETS egressd-dashboard DESTINATION bin)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/dashboards/ DESTINATION ${CMAKE_INSTALL_DATADIR}/egressd/dashboards)
