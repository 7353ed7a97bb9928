#include "cli/local_commands.h"

namespace vptq::cli {

std::vector<CommandAdder> LocalCommands() {
  std::vector<CommandAdder> adders = {AddEvalCommand, AddConvertCommand};
#ifdef VPTQ_CLI_HAS_WORKER
  adders.push_back(AddQuantizeCommand);
#endif
  return adders;
}

}  // namespace vptq::cli
