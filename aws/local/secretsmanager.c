#include "aws/local/internal.h"
const al_op al_sm_ops[] = {{NULL, NULL}};
