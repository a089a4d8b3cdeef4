#include "aws/local/internal.h"
const al_op al_ssm_ops[] = {{NULL, NULL}};
