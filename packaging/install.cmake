# install.cmake - what `cmake --install` lays out, and the Debian package
# CPack builds from it (docs/install.md).
#
# Everything takes its place from the prefix chosen at configure time
# (CMAKE_INSTALL_PREFIX, /usr/local by default; /usr for the package):
#   bin/                          egressd, egressd-dashboard, egressd-pktgen
#   share/egressd/dashboards/     the dashboard's page (dashboard.cmake)
#   share/egressd/scripts/        geoip-db.sh and its converter
#   lib/systemd/system/           egressd@.service, egressd-dashboard.service
#   SYSCONFDIR/egressd/           the profiles, intel/ lists, egressd.yaml (the unit's)
#   SYSCONFDIR/logrotate.d/       egressd
#   share/doc/egressd/            README, LICENSE, docs/
# SYSCONFDIR is /etc for the /usr prefix and PREFIX/etc otherwise, as
# GNUInstallDirs has it. The units are written with the paths of this
# prefix. Stage with DESTDIR (DESTDIR=/tmp/x cmake --install build).
include(GNUInstallDirs)

install(TARGETS egressd DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET egressd-pktgen)
  install(TARGETS egressd-pktgen DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(EGRESSD_ETC ${CMAKE_INSTALL_FULL_SYSCONFDIR}/egressd)
set(EGRESSD_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
file(GLOB EGRESSD_PROFILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/sensors/*.yaml)
install(FILES ${EGRESSD_PROFILES} DESTINATION ${EGRESSD_ETC})
# The unit's configuration: the datacenter profile, to be edited.
install(FILES ${CMAKE_SOURCE_DIR}/sensors/span-datacenter.yaml DESTINATION ${EGRESSD_ETC}
        RENAME egressd.yaml)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/sensors/intel/ DESTINATION ${EGRESSD_ETC}/intel)
install(FILES ${CMAKE_SOURCE_DIR}/sensors/systemd/egressd.logrotate
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d RENAME egressd)

# The units as shipped say /usr/local/bin and /etc/egressd; written here
# with this prefix's paths.
foreach(unit egressd@.service egressd-dashboard.service)
  file(READ ${CMAKE_SOURCE_DIR}/sensors/systemd/${unit} text)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" text "${text}")
  string(REPLACE "/usr/local/share/doc/egressd" "${CMAKE_INSTALL_FULL_DOCDIR}" text "${text}")
  string(REPLACE "/etc/egressd/" "${EGRESSD_ETC}/" text "${text}")
  file(WRITE ${CMAKE_BINARY_DIR}/systemd/${unit} "${text}")
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit} DESTINATION ${EGRESSD_UNITDIR})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/sensors/systemd/egressd@.service
             ${CMAKE_SOURCE_DIR}/sensors/systemd/egressd-dashboard.service)

install(PROGRAMS ${CMAKE_SOURCE_DIR}/scripts/geoip-db.sh ${CMAKE_SOURCE_DIR}/scripts/asn-csv-to-mmdb.pl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/egressd/scripts)
file(GLOB EGRESSD_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md ${CMAKE_SOURCE_DIR}/docs/*.json)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/LICENSE ${EGRESSD_DOCS}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ---- the Debian package: cpack -G DEB in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (egressd_VERSION_ARCH.deb) ---------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME egressd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "egressd developers <egressd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "egress sensor for datacenter edge appliances")
set(CPACK_PACKAGE_DESCRIPTION "egressd watches a mirror port (or replays captures), tracks flows,
classifies them with nDPI, enriches them with GeoIP/ASN and passive DNS,
holds every infrastructure role to the destinations it may reach and alerts
on the rest. Events are Suricata-shaped EVE JSON lines and go to Redis for a
dashboard.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# passwd: useradd in postinst; procps: /bin/kill, the unit's ExecReload.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, procps")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server, logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "npm, libmaxmind-db-writer-perl")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Every file under SYSCONFDIR is a conffile: an upgrade keeps local edits.
set(conffiles "")
foreach(f ${EGRESSD_PROFILES})
  get_filename_component(n ${f} NAME)
  string(APPEND conffiles "${EGRESSD_ETC}/${n}\n")
endforeach()
string(APPEND conffiles "${EGRESSD_ETC}/egressd.yaml\n")
file(GLOB intel_lists ${CMAKE_SOURCE_DIR}/sensors/intel/*)
foreach(f ${intel_lists})
  get_filename_component(n ${f} NAME)
  string(APPEND conffiles "${EGRESSD_ETC}/intel/${n}\n")
endforeach()
string(APPEND conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d/egressd\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${conffiles}")
configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/postinst ${CMAKE_BINARY_DIR}/debian/postinst COPYONLY)
configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/postrm ${CMAKE_BINARY_DIR}/debian/postrm COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_BINARY_DIR}/debian/conffiles;${CMAKE_BINARY_DIR}/debian/postinst;${CMAKE_BINARY_DIR}/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
