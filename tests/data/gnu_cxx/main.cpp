// A program using a Debian C++ library across its boundary, in libstdc++'s ABI only:
// Boost.Program_options (built by Debian's g++) takes and returns std::string, throws its own
// exceptions to this code, and calls back into it (a notifier that throws through Boost).
#include "greeting.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <string>

namespace po = boost::program_options;

int main(int argc, char **argv) {
  po::options_description options("greeting options");
  options.add_options()
      ("name", po::value<std::string>()->default_value("world"), "who to greet")
      ("count", po::value<int>()->default_value(1)->notifier([](int count) {
        if (count < 1) throw std::out_of_range("count " + std::to_string(count) + " < 1");
      }), "how many times");
  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, options), values);
    po::notify(values);
  } catch (const po::error &e) {  // thrown in libboost_program_options.so
    std::cout << "options: " << e.what() << "\n";
    return 2;
  } catch (const std::out_of_range &e) {  // thrown here, through Boost's notify()
    std::cout << "out of range: " << e.what() << "\n";
    return 3;
  }
  try {
    std::cout << greeting(values["name"].as<std::string>(), values["count"].as<int>()) << "\n";
  } catch (const Refused &e) {
    std::cout << "refused: " << e.what() << "\n";
    return 4;
  }
  std::cout << "C++ runtime: " << runtime_library() << "\n";
  return 0;
}
