#include "agent/reasons.h"

namespace hmq::agent {

std::string_view reason_text(uint16_t code) {
  switch (code) {
    case 101:
      return "agreement policy changed";
    case 103:
      return "container failure";
    case 104:
      return "agreement not executed before timeout";
    case 105:
      return "user requested";
    case 106:
      return "agreement bot requested";
    case 107:
      return "agreement never received reply ack";
    case 108:
      return "microservice failure";
    case 109:
      return "workload image load failure";
    case 110:
      return "microservice image load failure";
    case 111:
      return "microservice upgrade required";
    case 112:
      return "image data error";
    case 113:
      return "image fetch failure";
    case 114:
      return "image fetch authorization failure";
    case 115:
      return "image signature verification failure";
    case 116:
      return "node shutdown";
    case 117:
      return "microservice image fetch failure";
    case 118:
      return "microservice downgrade required";
    case 119:
      return "service suspended";
    case 120:
      return "node user input changed";
    case 121:
      return "node pattern changed";
    case 122:
      return "node policy changed";
    case 201:
      return "agreement bot never received a reply";
    case 202:
      return "negative reply";
    case 203:
      return "no data received";
    case 204:
      return "agreement bot policy changed";
    case 205:
      return "agreement discovered";
    case 206:
      return "agreement bot user requested";
    case 207:
      return "forced upgrade";
    case 208:
      return "node heartbeat missing";
    case 209:
      return "agreement missing";
    case 210:
      return "superseded by an upgrade";
    default:
      return "";
  }
}

}  // namespace hmq::agent
