#include "agbot/app.h"

// hmq-agbot: flags in, agbot out. Everything else lives in the hmq::agbot library.
int main(int argc, char** argv) {
  hmq::agbot::app_config cfg;
  if (int code = hmq::agbot::parse_args(argc, argv, cfg); code >= 0) return code;
  return hmq::agbot::run(cfg);
}
