# Exchange client library (hmq::exchange_client): used by the hmq CLI, agbots and agents.
# Included from exchange/CMakeLists.txt so the server and the client share the folder.
hmq_library(NAME exchange_client
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client.cc
  DEPS hmq::bus hmq::wire hmq::crypto hmq::loop hmq::schema)
target_link_libraries(hmq_all INTERFACE hmq::exchange_client)
