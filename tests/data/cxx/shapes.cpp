// The second translation unit (and, in one of the allexes, a module of its own): what it
// throws is caught in the other one, its static object is constructed in link order.
#include "shapes.h"
#include <iostream>
#include <stdexcept>

namespace {
Announce shapes_static("shapes");
}  // namespace

Shape::~Shape() {}
int Square::area() const { return side * side; }
Shape *make_shape(int side) { return new Square(side); }
void fail(const char *what) { throw std::runtime_error(what); }
void throw_shape(int side) { throw Square(side); }
void throw_error(int code) { throw ShapeError{code}; }
