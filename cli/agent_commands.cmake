# hmq::cli_agent: the `hmq` commands that talk to the local agent (cli/agent_commands.h).
# Included from agent/CMakeLists.txt; cli/ may include it as well (guarded) and link it into hmq.
if(NOT TARGET hmq_cli_agent)
  hmq_library(NAME cli_agent
    SOURCES ${CMAKE_SOURCE_DIR}/cli/agent_commands.cc
    DEPS hmq::control CLI11::CLI11 nlohmann_json::nlohmann_json)
  target_link_libraries(hmq_all INTERFACE hmq::cli_agent)
endif()
