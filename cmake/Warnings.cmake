# The warning set from STYLE.md, applied to every target of ours.
function(es_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wformat=2
    -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
    -Wnull-dereference -Wvla -Wpointer-arith -Wundef
    -fno-common -D_GNU_SOURCE
    $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  if(WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(SANITIZE)
  add_compile_options(-fsanitize=${SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SANITIZE})
endif()
