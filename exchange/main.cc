// hmq-exchange: flags and config, then the app (exchange/app.h).
#include <CLI/CLI.hpp>

#include "exchange/app.h"

int main(int argc, char** argv) {
  hmq::exchange::app_options o;
  CLI::App cli{
      "hmq-exchange: the Horizon-MQ exchange (registry, key directory, change events) "
      "answering sealed RPCs over MQTT"};
  hmq::exchange::add_flags(cli, o);
  cli.set_config("--config", "",
                 "Read options from this TOML/INI file (keys are the long flag names, "
                 "e.g. broker = \"tcp://host:1883\"); flags on the command line win");
  CLI11_PARSE(cli, argc, argv);
  return hmq::exchange::run(o);
}
