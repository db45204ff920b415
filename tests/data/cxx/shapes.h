// Shared by the two translation units of the C++ platform test program.
struct Shape {
  virtual ~Shape();
  virtual int area() const = 0;
};
struct Square : Shape {
  int side;
  explicit Square(int s) : side(s) {}
  int area() const override;
};
struct ShapeError {
  int code;
};
Shape *make_shape(int side);
void fail(const char *what);  // throws std::runtime_error
void throw_shape(int side);   // throws Square
void throw_error(int code);   // throws ShapeError
extern int allocations;       // counted by the program's own operator new
